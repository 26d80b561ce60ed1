"""Pure rules with no AWS: validation, workflow, errors."""
