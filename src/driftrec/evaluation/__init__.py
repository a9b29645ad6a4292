"""Offline evaluation: metrics and full-ranking evaluation of any Recommender."""
