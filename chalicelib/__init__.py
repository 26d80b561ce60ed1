"""CheckOS: everything the Lambda functions ship besides app.py."""
