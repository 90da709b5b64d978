//! A fake Kubernetes API server for tests. Built out in its own change.
