"""SSH adapter (paramiko): connections with strict host keys, verified resumable pulls."""
