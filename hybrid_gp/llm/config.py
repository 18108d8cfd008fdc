"""`LLMConfig`: which endpoint and model the LLM operators use, and what they may spend.

A PyGlove object like the rest of the run config (typed fields, JSON round-trip,
`rebind`). It holds the *name* of the environment variable with the API key, never
the key. Cross-field rules (a replay needs a transcript, a dollar cap needs prices)
are checked on construction and on every rebind, and raise ConfigError.
"""
# No `from __future__ import annotations`: PyGlove reads the field annotations.
# ruff: noqa: F722  (PyGlove's Annotated[spec, "doc"] strings are not forward references)

import inspect
from urllib.parse import urlsplit

import pyglove as pg

from ..errors import ConfigError, first_line

MODES = ("live", "record", "replay", "replay-or-live")
TOKEN_PARAMS = ("max_tokens", "max_completion_tokens")



def stable_name(key: str):
    """Class decorator: save and load this PyGlove class under a fixed JSON type name,
    so moving or renaming the class does not break old run directories. (It lives here,
    the lowest config module; hybrid_gp.config imports it.)"""

    def register(cls):
        cls.register_for_deserialization(key)
        return cls

    return register


# Value specs are made per field: PyGlove stores each field's default on its spec.
def _opt_int():
    return pg.typing.Int(min_value=1).noneable()


def _share():
    return pg.typing.Float(min_value=0.0, max_value=1.0)



@stable_name("hybrid_gp.LLMOperatorRates")
class LLMOperatorRates(pg.Object):
    """Relative weights of the LLM operators (normalised when used; 0 turns one off)."""

    rewrite: pg.typing.Annotated[pg.typing.Float(min_value=0.0),
                                 "llm_rewrite: improve one parent"] = 1.0
    crossover: pg.typing.Annotated[pg.typing.Float(min_value=0.0),
                                   "llm_crossover: combine two parents"] = 0.5
    simplify: pg.typing.Annotated[pg.typing.Float(min_value=0.0),
                                  "llm_simplify: shorter forms of one parent"] = 0.25

    def as_dict(self) -> dict[str, float]:
        """Operator name (as in events) -> weight."""
        return {f"llm_{k}": float(v) for k, v in self.sym_init_args.items()}


@stable_name("hybrid_gp.LLMConfig")
class LLMConfig(pg.Object):
    """An OpenAI-compatible endpoint, a model, and the limits of its use.

    `base_url=None` is OpenAI itself; vLLM, Ollama and llama.cpp servers are reached
    by their `/v1` URL. `mode` is live, record, replay (strict, offline) or
    replay-or-live; every mode but live needs `transcript`.
    """

    model: pg.typing.Annotated[pg.typing.Str(regex=r".*\S.*"), "model name sent to the endpoint"]
    base_url: pg.typing.Annotated[pg.typing.Str().noneable(),
                                  "OpenAI-compatible base URL (None: api.openai.com)"] = None
    api_key_env: pg.typing.Annotated[pg.typing.Str(regex=r".*\S.*"),
                                     "environment variable that holds the API key"] = (
        "OPENAI_API_KEY")
    rate: pg.typing.Annotated[_share(), "share of children asked of the LLM operators"] = 0.1
    min_share: pg.typing.Annotated[_share(), "floor of the LLM share the portfolio may pick"] = 0.0
    max_share: pg.typing.Annotated[_share(), "cap of the LLM share the portfolio may pick"] = 0.5
    max_calls: pg.typing.Annotated[_opt_int(), "requests sent, at most (retries included "
                                             "in their request)"] = None
    max_tokens: pg.typing.Annotated[_opt_int(), "prompt + completion tokens, at most"] = None
    max_usd: pg.typing.Annotated[pg.typing.Float(min_value=0.0).noneable(),
                                 "dollars, at most (needs `prices`)"] = None
    prices: pg.typing.Annotated[
        pg.typing.Dict([(pg.typing.StrKey(),
                         pg.typing.List(pg.typing.Float(min_value=0.0), size=2))]),
        "model -> [USD per 1M input tokens, USD per 1M output tokens]"] = {}  # noqa: RUF012 (PyGlove copies field defaults)
    mode: pg.typing.Annotated[pg.typing.Enum("live", list(MODES)),
                              "live | record | replay | replay-or-live"] = "live"
    transcript: pg.typing.Annotated[pg.typing.Str().noneable(),
                                    "JSONL file of requests and replies"] = None
    temperature: pg.typing.Annotated[pg.typing.Float(min_value=0.0, max_value=2.0),
                                     "sampling temperature"] = 0.7
    max_reply_tokens: pg.typing.Annotated[pg.typing.Int(min_value=1),
                                          "completion tokens per reply, at most"] = 512
    token_param: pg.typing.Annotated[
        pg.typing.Enum("max_tokens", list(TOKEN_PARAMS)),
        "request field carrying max_reply_tokens (newer OpenAI models want "
        "max_completion_tokens)"] = "max_tokens"
    max_reply_chars: pg.typing.Annotated[pg.typing.Int(min_value=100),
                                         "longer reply texts are cut here"] = 20_000
    timeout: pg.typing.Annotated[pg.typing.Float(min_value=0.001),
                                 "seconds per HTTP attempt"] = 60.0
    concurrency: pg.typing.Annotated[pg.typing.Int(min_value=1),
                                     "requests in flight at once"] = 4
    max_pending: pg.typing.Annotated[pg.typing.Int(min_value=1).noneable(),
                                     "submitted but not yet joined (None: 2 x "
                                     "concurrency)"] = None
    retries: pg.typing.Annotated[pg.typing.Int(min_value=0),
                                 "extra attempts after a timeout, 429, 5xx or "
                                 "connection error"] = 2
    backoff: pg.typing.Annotated[pg.typing.Float(min_value=0.0),
                                 "first retry delay in seconds (doubles, with jitter)"] = 1.0
    backoff_max: pg.typing.Annotated[pg.typing.Float(min_value=0.0),
                                     "longest retry delay, Retry-After included"] = 30.0
    failures_to_disable: pg.typing.Annotated[pg.typing.Int(min_value=1),
                                             "consecutive failed requests after which "
                                             "the run goes on without the LLM"] = 3
    k: pg.typing.Annotated[pg.typing.Int(min_value=1, max_value=32),
                           "expressions asked for per reply"] = 4
    prompt_elites: pg.typing.Annotated[pg.typing.Int(min_value=0),
                                       "best programs shown in a prompt"] = 5
    prompt_failures: pg.typing.Annotated[pg.typing.Int(min_value=0),
                                         "recent rejected proposals shown in a prompt"] = 5
    operators: LLMOperatorRates = LLMOperatorRates()

    @pg.explicit_method_override
    def __init__(self, *args, **kwargs):
        try:
            super().__init__(*args, **kwargs)
        except ConfigError:
            raise
        except (TypeError, ValueError, KeyError) as exc:
            raise ConfigError(f"LLMConfig: {first_line(exc)}") from None

    def _on_bound(self):
        super()._on_bound()
        check_llm_config(self)

    @property
    def pending_limit(self) -> int:
        """Requests that may wait for a join at once."""
        return self.max_pending if self.max_pending is not None else 2 * self.concurrency

    def price(self) -> tuple[float, float]:
        """(USD per input token, USD per output token) of this model; zeros if unlisted."""
        pair = self.prices.get(self.model)
        if pair is None:
            return (0.0, 0.0)
        return (float(pair[0]) / 1e6, float(pair[1]) / 1e6)


def _keyword_signature(cls) -> inspect.Signature:
    """`LLMConfig(model, *, base_url=None, ...)` for help() and editors: the explicit
    __init__ above would otherwise show only (*args, **kwargs)."""
    params = [inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
    for key, spec in cls.__schema__.fields.items():
        default = spec.value.default
        params.append(inspect.Parameter(
            str(key), inspect.Parameter.KEYWORD_ONLY,
            default=inspect.Parameter.empty if default is pg.MISSING_VALUE else default))
    return inspect.Signature(params)


LLMConfig.__init__.__signature__ = _keyword_signature(LLMConfig)


def check_llm_config(config: LLMConfig) -> None:
    """Raise ConfigError naming the field when fields contradict each other."""
    if config.mode != "live" and not config.transcript:
        raise ConfigError(f"llm.transcript: mode {config.mode!r} needs a transcript file "
                          f"(a JSONL path); only mode 'live' runs without one")
    if config.mode == "live" and config.transcript:
        raise ConfigError("llm.transcript: mode 'live' writes no transcript; use mode "
                          "'record' to keep one")
    if not any(w > 0 for w in config.operators.as_dict().values()):
        raise ConfigError("llm.operators: every weight is 0, so no LLM operator could run; "
                          "give one a positive weight, or leave the LLM out")
    if config.min_share > config.max_share:
        raise ConfigError(f"llm.min_share ({config.min_share}) must be <= llm.max_share "
                          f"({config.max_share})")
    if not config.min_share <= config.rate <= config.max_share:
        raise ConfigError(f"llm.rate ({config.rate}) must lie between llm.min_share "
                          f"({config.min_share}) and llm.max_share ({config.max_share})")
    if config.max_usd is not None and config.model not in config.prices:
        raise ConfigError(f"llm.max_usd needs the price of model {config.model!r}: set "
                          f"llm.prices = {{{config.model!r}: [USD per 1M input tokens, "
                          f"USD per 1M output tokens]}}")
    if config.base_url is not None and (
            not config.base_url.startswith(("http://", "https://"))
            or not urlsplit(config.base_url).netloc):
        raise ConfigError(f"llm.base_url: expected an http:// or https:// URL, got "
                          f"{config.base_url!r}")
    if not config.api_key_env.isidentifier():
        # The value is not echoed: it may be a key pasted into the wrong field.
        raise ConfigError("llm.api_key_env: expected the name of an environment variable "
                          "such as OPENAI_API_KEY (the variable's name, never the key itself)")
