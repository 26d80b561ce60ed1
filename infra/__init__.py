"""Infrastructure: the CloudFormation template and tools that read it."""
