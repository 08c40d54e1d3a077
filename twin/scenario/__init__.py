"""Scenario files: pydantic schemas for YAML scenarios and their translation to core objects."""
