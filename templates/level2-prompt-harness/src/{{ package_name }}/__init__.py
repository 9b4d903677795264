"""Prompt-testing harness: prompt files, YAML suites, providers, cache and reports."""
