"""PynamoDB models on the one CheckOS table, and their key builders."""
