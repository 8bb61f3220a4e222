"""ocirt: an OCI runtime. The library API is in ocirt.api; the CLI in ocirt.main."""
