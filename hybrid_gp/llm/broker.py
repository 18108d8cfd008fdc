"""The broker: LLM requests run in the background while the engine keeps breeding.

The engine talks to a `Broker` from its own thread, twice a generation:

    results = broker.collect(generation)   # replies that join now
    broker.submit(request, generation)     # returns at once (None: not sent)

Live requests run on an asyncio loop in one background thread. Everything the engine
can observe (which replies join, the budget, whether the LLM is still in use, the
counters) changes only inside `submit` and `collect`, on the engine's thread. In
record mode each reply's join generation is written to the transcript; in replay mode
`collect(g)` returns exactly the replies recorded as joined at g, so the replayed run
makes the same decisions and ends bit-identical, with no endpoint at all.

When the endpoint keeps failing (or refuses the key or the model) the broker stops
using it: one warning line, pending requests cancelled, `active` False; the run goes
on with the classic operators.

A checkpoint keeps the broker's `state()`: counters, spending and the requests still in
flight. A resumed broker (`restore`) answers those from the transcript where it holds
them (at their recorded generation) and sends the rest again; in mode 'record' every
request the killed session already recorded is answered from the file, so the
finished transcript replays the resumed run exactly.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import threading
from collections import Counter, deque
from dataclasses import dataclass
from typing import Any

from ..grammar import Grammar
from ..rng import stream
from .budget import Budget, Reservation, prompt_token_bound
from .client import (
    FAULT_KINDS,
    REFUSING,
    RETRYABLE,
    LLMClient,
    Outcome,
    request_params,
    resolve_api_key,
)
from .config import LLMConfig
from .prompts import REJECTION_KINDS, parse_reply, rejected_lines
from .request import LLMRequest, LLMResult
from .transcript import (
    Occurrences,
    Transcript,
    TranscriptError,
    TranscriptMiss,
    describe_request,
    exchange,
    has_content,
    refuse_existing,
    request_key,
)

log = logging.getLogger("hybrid_gp.llm")
_SHUTDOWN_SECONDS = 5.0


@dataclass(frozen=True)
class InFlight:
    """A request that had not joined when the state was taken."""

    seq: int
    request: LLMRequest
    key: str
    occurrence: int
    submitted: int
    reservation: Reservation


@dataclass(frozen=True)
class BrokerState:
    """What a checkpoint keeps of a broker (picklable; no futures, no network)."""

    seq: int
    occurrences: dict[str, int]
    in_flight: tuple[InFlight, ...]
    budget: dict[str, Any]
    counters: dict[str, Any]


_COUNTERS = ("results", "failed", "candidates", "accepted", "resent", "disabled",
             "_consecutive_failures", "_budget_noted")


@dataclass
class _Ticket:
    """A submitted request until it joins."""

    seq: int
    request: LLMRequest
    messages: list[dict[str, str]]
    key: str
    occurrence: int
    submitted: int
    reservation: Reservation
    future: concurrent.futures.Future[Outcome] | None = None  # live
    recorded: dict[str, Any] | None = None  # replayed

    @property
    def join_at(self) -> int | None:
        return None if self.recorded is None else self.recorded.get("joined")


class Broker:
    """Sends LLM requests for one model without blocking, and joins their replies at
    generation boundaries (recorded ones at their recorded generation)."""

    def __init__(self, config: LLMConfig, *, grammar: Grammar, n_features: int,
                 max_size: int, max_depth: int, seed: int = 0, resumed: bool = False,
                 state: BrokerState | None = None):
        """`resumed`: the run continues an earlier session (from `state`, its last
        checkpoint's broker, or from the start when it never checkpointed)."""
        self.config = config
        self.model = config.model
        self.grammar = grammar
        self.n_features = n_features
        self.max_size = max_size
        self.max_depth = max_depth
        self.params = request_params(config)
        self.budget = Budget(config.max_calls, config.max_tokens, config.max_usd,
                             config.price())
        self._rng = stream(seed, "llm", "backoff", config.model)  # retry jitter only
        self._client: LLMClient | None = None
        if config.mode in ("live", "record"):
            # Now, on the caller's thread: a missing key is a config error before the run,
            # and the openai import (~1 s) does not stall the engine mid-run.
            self._live_client()
        self._resumed = resumed or state is not None
        self.transcript = _open_transcript(
            config, resumed=self._resumed, required=state is not None and state.seq > 0)
        self._occurrences = Occurrences()
        self._pending: dict[int, _Ticket] = {}
        self._seq = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._closed = False
        self._consecutive_failures = 0
        self._events: list[dict[str, Any]] = []
        self._budget_noted = False
        self._failures: deque[tuple[str, str]] = deque(maxlen=64)
        self._fingerprints: set[str] = set()
        self.disabled: str | None = None  # why the LLM is no longer used
        self.faults: Counter[str] = Counter({k: 0 for k in FAULT_KINDS})
        self.rejections: Counter[str] = Counter({k: 0 for k in REJECTION_KINDS})
        self.results = 0
        self.failed = 0
        self.candidates = 0
        self.accepted = 0
        # requests asked again because an earlier session stopped waiting for them (in
        # flight at its checkpoint, or cancelled at its stop)
        self.resent = 0
        self._pending_at_close: int | None = None
        self._generation = 0  # the latest generation the engine named

    # ------------------------------------------------------------------ state
    @property
    def active(self) -> bool:
        """Whether requests may still be submitted (not disabled, budget not spent)."""
        return self.disabled is None and not self.budget.exhausted and not self._closed

    @property
    def pending(self) -> int:
        """Submitted requests that have not joined yet."""
        return len(self._pending)

    def capacity(self) -> int:
        """How many more requests may be submitted now."""
        if not self.active:
            return 0
        return max(0, self.config.pending_limit - len(self._pending))

    def recent_failures(self, n: int | None = None) -> tuple[tuple[str, str], ...]:
        """The latest rejected proposals as (text, "kind: reason"), newest last."""
        n = self.config.prompt_failures if n is None else n
        return tuple(list(self._failures)[-n:]) if n > 0 else ()

    # ------------------------------------------------------------------ submit
    def submit(self, request: LLMRequest, generation: int) -> int | None:
        """Queue one request; returns its sequence number, or None when it is not sent
        (LLM disabled, budget spent, too many pending). Never waits for the network."""
        if not self.active or len(self._pending) >= self.config.pending_limit:
            return None
        messages = request.message_dicts()
        reservation = self.budget.reserve(prompt_token_bound(messages),
                                          self.config.max_reply_tokens)
        if reservation is None:
            self.faults["budget_exhausted"] += 1
            self._note_budget(generation)
            return None
        key = request_key(self.model, messages, self.params)
        ticket = _Ticket(self._seq, request, messages, key, self._occurrences.next(key),
                         generation, reservation)
        self._seq += 1
        ticket.recorded = self._recorded(ticket)
        if ticket.recorded is None:
            self._ask(ticket)
        self._pending[ticket.seq] = ticket
        self._note_budget(generation)
        return ticket.seq

    def _recorded(self, ticket: _Ticket) -> dict[str, Any] | None:
        """The transcript entry that answers this request: in the replay modes, and in
        a resumed recording (what the earlier session already recorded)."""
        mode = self.config.mode
        if mode == "live" or (mode == "record" and not self._resumed):
            return None
        assert self.transcript is not None
        entry = self.transcript.lookup(ticket.key, ticket.occurrence)
        if mode == "replay":
            if entry is None:
                name = describe_request(ticket.seq, ticket.request.operator, self.model,
                                        ticket.key, ticket.occurrence, ticket.request.gist)
                raise TranscriptMiss(
                    f"replay: {self.transcript.path} holds no reply for {name}; the run "
                    f"differs from the recorded one (config, seed or code version)")
            return entry
        if entry is None or (entry.get("outcome") == "cancelled" and "stopped" not in entry):
            return None  # ask the endpoint
        return entry  # a cancelled one waits as the recording did (see collect)

    def _ask(self, ticket: _Ticket) -> None:
        """Send a request to the endpoint; its outcome joins when it arrives."""
        ticket.future = asyncio.run_coroutine_threadsafe(
            _call(self._live_client(), ticket.messages), self._ensure_loop())

    # ------------------------------------------------------------------ collect
    def collect(self, generation: int) -> list[LLMResult]:
        """The results joining at `generation`, in submission order."""
        self._generation = generation
        if self.config.mode != "replay":
            self._ask_past_stops(generation)
        ready = [t for seq, t in sorted(self._pending.items()) if self._ready(t, generation)]
        results = []
        for ticket in ready:
            del self._pending[ticket.seq]
            if ticket.recorded is not None:
                outcome = Outcome.from_json(ticket.recorded)
                if ticket.join_at != generation:  # (resumed) it joins at another point
                    self._record(ticket, outcome, generation)
            else:
                assert ticket.future is not None
                outcome = ticket.future.result()
                self._record(ticket, outcome, generation)
            results.append(self._join(ticket, outcome, generation))
        if self.disabled is not None and self._pending:
            self._cancel_pending()
        return results

    def _ask_past_stops(self, generation: int) -> None:
        """A request the recording cancelled when it stopped (at `stopped`) waits as it
        did there; once this run goes past that generation, it is asked for real."""
        for ticket in self._pending.values():
            rec = ticket.recorded
            if (rec is not None and rec.get("outcome") == "cancelled"
                    and generation > rec.get("stopped", -1)):
                ticket.recorded = None
                self._ask(ticket)
                self.resent += 1

    def _ready(self, ticket: _Ticket, generation: int) -> bool:
        if ticket.recorded is not None:
            join_at = ticket.join_at
            if self.config.mode == "replay":
                return join_at is not None and join_at <= generation
            if join_at is None:  # it never joined the recorded run, which stopped waiting
                stopped = ticket.recorded.get("stopped")  # at this generation
                return stopped is None or generation > stopped
            return join_at <= generation
        assert ticket.future is not None
        return ticket.future.done()

    def _join(self, ticket: _Ticket, outcome: Outcome, generation: int) -> LLMResult:
        cost = self.budget.settle(ticket.reservation, outcome.usage)
        faults = Counter(outcome.faults)
        fault, detail = outcome.fault, outcome.detail
        programs: tuple[Any, ...] = ()
        rejections: dict[str, int] = {}
        rejected: tuple[tuple[str, str], ...] = ()
        n_candidates = 0
        fingerprint = None
        if outcome.reply is not None:
            reply = outcome.reply
            fingerprint = reply.system_fingerprint
            if fingerprint:
                self._fingerprints.add(fingerprint)
            parsed = parse_reply(reply.text, self.grammar, self.n_features, self.max_size,
                                 self.max_depth, k=self.config.k, known=ticket.request.known)
            n_candidates = parsed.n_candidates
            programs = tuple(parsed.programs)
            rejections = dict(parsed.rejections)
            rejected = tuple(rejected_lines(parsed))
            self.rejections.update(parsed.rejections)
            self._failures.extend(rejected)
            if n_candidates == 0:
                fault, detail = "malformed", f"no line starts with EXPR: ({len(reply.text)} chars)"
                faults["malformed"] += 1
        self.faults.update(faults)
        self.results += 1
        self.candidates += n_candidates
        self.accepted += len(programs)
        if fault is not None:
            self.failed += 1
        self._health(fault, detail, outcome.status, generation)
        result = LLMResult(
            seq=ticket.seq, operator=ticket.request.operator,
            parent_ids=ticket.request.parent_ids, model=self.model, programs=programs,
            rejections=rejections, rejected=rejected, n_candidates=n_candidates,
            fault=fault, faults=dict(faults), detail=detail,
            attempts=outcome.attempts, prompt_tokens=outcome.usage.prompt_tokens,
            completion_tokens=outcome.usage.completion_tokens, cost_usd=cost,
            latency=outcome.latency, system_fingerprint=fingerprint,
            submitted=ticket.submitted, joined=generation,
            replayed=ticket.recorded is not None)
        self._events.append({**result.event(), "generation": generation})
        return result

    def _health(self, fault: str | None, detail: str, status: int | None,
                generation: int) -> None:
        """Count failures in a row; stop using the endpoint when it keeps failing, or at
        once when it refuses the key or the model."""
        if fault == "client_error" and status in REFUSING:
            self._disable(f"the endpoint refused the request ({detail})", generation)
        elif fault in RETRYABLE or fault in ("client_error", "internal", "empty", "malformed"):
            self._consecutive_failures += 1
            if self._consecutive_failures >= self.config.failures_to_disable:
                self._disable(f"{self._consecutive_failures} requests in a row failed "
                              f"(last: {fault}, {detail})", generation)
        else:
            self._consecutive_failures = 0

    def _disable(self, reason: str, generation: int) -> None:
        if self.disabled is not None:
            return
        self.disabled = reason
        where = self.config.base_url or "api.openai.com"
        log.warning("hybrid_gp: LLM %s at %s is no longer used: %s; the run goes on with "
                    "the classic operators", self.model, where, reason)
        self._events.append({"event": "llm_disabled", "generation": generation,
                             "model": self.model, "reason": reason})

    def _note_budget(self, generation: int) -> None:
        if self.budget.exhausted and not self._budget_noted:
            self._events.append({"event": "llm_budget_exhausted", "generation": generation,
                                 "model": self.model, "cap": self.budget.hit,
                                 "calls": self.budget.calls})
            self._budget_noted = True

    # ------------------------------------------------------------------ events and stats
    def take_events(self) -> list[dict[str, Any]]:
        """Events since the last call (llm_call per joined request, llm_disabled,
        llm_budget_exhausted), for events.jsonl; clears them."""
        events, self._events = self._events, []
        return events

    def stats(self) -> dict[str, Any]:
        """Counters for res.stats; no wall-clock values, so a replay reports the same."""
        b = self.budget
        return {
            "llm_calls": b.calls,
            "llm_tokens": b.tokens,
            "llm_prompt_tokens": b.prompt_tokens,
            "llm_completion_tokens": b.completion_tokens,
            "llm_usd": b.usd,
            "llm_results": self.results,
            "llm_failures": self.failed,
            "llm_candidates": self.candidates,
            "llm_accepted": self.accepted,
            "llm_rejections": dict(self.rejections),
            "llm_faults": dict(self.faults),
            "llm_pending": (len(self._pending) if self._pending_at_close is None
                            else self._pending_at_close),
            "llm_resent": self.resent,
            "llm_budget_exhausted": b.hit if b.exhausted else None,
            "llm_disabled": self.disabled,
            "llm_system_fingerprints": sorted(self._fingerprints),
        }

    # ------------------------------------------------------------------ checkpoints
    def state(self) -> BrokerState:
        """A picklable copy of everything the run's future depends on."""
        in_flight = tuple(InFlight(t.seq, t.request, t.key, t.occurrence, t.submitted,
                                   t.reservation) for _, t in sorted(self._pending.items()))
        counters = {name: getattr(self, name) for name in _COUNTERS}
        counters.update(faults=dict(self.faults), rejections=dict(self.rejections),
                        failures=list(self._failures), fingerprints=sorted(self._fingerprints))
        return BrokerState(self._seq, self._occurrences.counts(), in_flight,
                           self.budget.snapshot(), counters)

    def restore(self, state: BrokerState) -> None:
        """Continue from a checkpoint's `state()`: requests in flight are answered from
        the transcript where it holds them, otherwise sent again (counted in
        `llm_resent`; their reservations are the ones already held)."""
        self._seq = state.seq
        self._occurrences = Occurrences(state.occurrences)
        self.budget.restore(state.budget)
        c = dict(state.counters)
        self.faults.update(c.pop("faults"))
        self.rejections.update(c.pop("rejections"))
        self._failures.extend(tuple(f) for f in c.pop("failures"))
        self._fingerprints.update(c.pop("fingerprints"))
        for name, value in c.items():
            setattr(self, name, value)
        self._check_recorded(state)
        for f in state.in_flight:
            ticket = _Ticket(f.seq, f.request, f.request.message_dicts(), f.key, f.occurrence,
                             f.submitted, f.reservation)
            ticket.recorded = self._recorded(ticket)
            if ticket.recorded is None:
                self._ask(ticket)
                self.resent += 1
            self._pending[ticket.seq] = ticket

    def _check_recorded(self, state: BrokerState) -> None:
        """Every request the run made before its checkpoint, apart from those still in
        flight, joined or was cancelled, so the transcript holds it; one that does not
        was cut or edited and can no longer replay the run."""
        if self.transcript is None:
            return
        flying = {(f.key, f.occurrence) for f in state.in_flight}
        lost = [(k, o) for k, n in state.occurrences.items() for o in range(n)
                if (k, o) not in flying and self.transcript.lookup(k, o) is None]
        if lost:
            raise TranscriptError(
                f"llm.transcript: {self.transcript.path} lacks {len(lost)} of the "
                f"{state.seq} requests this run recorded before its checkpoint (the first: "
                f"key {lost[0][0][:12]}, occurrence {lost[0][1]}); the file was cut or "
                f"changed, so it could no longer replay the run. Restore it, or start a "
                f"new run")

    # ------------------------------------------------------------------ background loop
    def _ensure_loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            loop = asyncio.new_event_loop()
            thread = threading.Thread(target=loop.run_forever, name="hybrid-gp-llm",
                                      daemon=True)
            thread.start()
            self._loop, self._thread = loop, thread
        return self._loop

    def _live_client(self) -> LLMClient:
        if self._client is None:  # the key goes straight to the client; nothing else holds it
            self._client = LLMClient(self.config, self._rng, resolve_api_key(self.config))
        return self._client

    def wait(self, timeout: float | None = None) -> bool:
        """Block until every live request in flight has an outcome (tests, shutdown);
        False on timeout. Joins nothing: `collect` still decides when replies join."""
        futures = [t.future for t in self._pending.values() if t.future is not None]
        if not futures:
            return True
        _, not_done = concurrent.futures.wait(futures, timeout=timeout)
        return not not_done

    def _record(self, ticket: _Ticket, outcome: Outcome, joined: int | None) -> None:
        """Append what a request became (a later line for the same request wins); one
        that never joined notes the generation at which the run stopped waiting."""
        if self.transcript is None or self.config.mode == "replay":
            return
        self.transcript.append(exchange(
            key=ticket.key, occurrence=ticket.occurrence, seq=ticket.seq,
            operator=ticket.request.operator, model=self.model, messages=ticket.messages,
            params=self.params, outcome=outcome.to_json(), submitted=ticket.submitted,
            joined=joined, stopped=self._generation if joined is None else None))

    def _cancel_pending(self) -> None:
        """Drop requests that will not join: record what they became, count a reply
        that arrived as spent (it was paid for) and free the rest of the budget."""
        for _, ticket in sorted(self._pending.items()):
            if ticket.future is None:  # replayed: the transcript says what it became
                if ticket.recorded is not None:
                    self._settle_unjoined(ticket, Outcome.from_json(ticket.recorded))
                else:
                    self.budget.release(ticket.reservation)
                continue
            if ticket.future.done() and not ticket.future.cancelled():
                outcome = ticket.future.result()
            else:
                ticket.future.cancel()
                outcome = Outcome(None, "cancelled", detail="the run no longer waited")
            self._settle_unjoined(ticket, outcome)
            self._record(ticket, outcome, None)
        self._pending.clear()

    def _settle_unjoined(self, ticket: _Ticket, outcome: Outcome) -> None:
        if outcome.fault == "cancelled":
            self.faults["cancelled"] += 1
        self.budget.settle(ticket.reservation, outcome.usage)  # no reply: no usage

    def close(self) -> None:
        """Cancel what is pending, stop the background thread, close the transcript.
        Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        self._pending_at_close = len(self._pending)
        try:
            self._cancel_pending()
        finally:
            self._stop_loop()
            if self.transcript is not None:
                self.transcript.close()

    def _stop_loop(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        # On a timeout the loop is stopped below all the same.
        with contextlib.suppress(concurrent.futures.TimeoutError, RuntimeError):
            asyncio.run_coroutine_threadsafe(self._shutdown(), loop).result(_SHUTDOWN_SECONDS)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(_SHUTDOWN_SECONDS)
        if not thread.is_alive():
            loop.close()
        self._loop = self._thread = None

    async def _shutdown(self) -> None:
        current = asyncio.current_task()
        tasks = [t for t in asyncio.all_tasks() if t is not current]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._client is not None:
            await self._client.aclose()

    def __enter__(self) -> Broker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (f"Broker(model={self.model!r}, mode={self.config.mode!r}, "
                f"pending={len(self._pending)}, active={self.active})")


async def _call(client: LLMClient, messages: list[dict[str, str]]) -> Outcome:
    """One request on the loop; an unexpected error becomes a counted fault, never a
    traceback in the background thread."""
    try:
        return await client.complete(messages)
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        return Outcome(None, "internal", {"internal": 1}, detail=type(exc).__name__)


def preflight(config: LLMConfig) -> None:
    """What a Broker would refuse, checked before a run writes anything: the API key
    for every mode that may call the endpoint, a record transcript that exists
    already, a replay transcript that is missing or unreadable."""
    if config.mode != "replay":
        resolve_api_key(config)
    if config.mode == "record" and config.transcript:
        refuse_existing(config.transcript)
    if config.mode == "replay":
        _open_transcript(config)


def _open_transcript(config: LLMConfig, resumed: bool = False,
                     required: bool = False) -> Transcript | None:
    """The run's transcript. A resumed recording appends to its file, which must still
    be there when the checkpoint counts requests (`required`)."""
    mode = config.mode
    if mode == "live":
        return None
    if config.transcript is None:  # LLMConfig refuses this; kept for direct callers
        raise TranscriptError(f"llm.transcript: mode {mode!r} needs a transcript file")
    if mode == "record" and resumed:
        if has_content(config.transcript):
            return Transcript(config.transcript, read=True, write=True)
        if required:
            raise TranscriptError(
                f"llm.transcript: {config.transcript} is missing; this run recorded its "
                f"LLM calls there, and resuming it appends to the same file (without "
                f"it the transcript could never replay the run)")
        # nothing was recorded yet: the resumed run starts its transcript afresh
    if mode == "record":
        return Transcript(config.transcript, read=False, write=True, fresh=True)
    if mode == "replay":
        return Transcript(config.transcript, read=True, write=False)
    return Transcript(config.transcript, read=True, write=True)
