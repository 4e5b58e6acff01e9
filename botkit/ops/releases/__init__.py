"""Safe releases on the local cluster: rolling updates, canary analysis and drill candidates."""
