"""Variation operators: classic GP (classic.py), the portfolio (portfolio.py)."""
