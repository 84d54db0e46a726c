"""Surveys: the question kinds, answer validation and the special-category rule (server/surveys/rules.py)."""
