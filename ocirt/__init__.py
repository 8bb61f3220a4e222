"""ocirt: an OCI runtime. The library API is in ocirt.api; the CLI in ocirt.main."""

# The runtime-spec version ocirt implements: `--version`, `spec`, state documents and
# features' ociVersionMax all say this one.
OCI_VERSION = "1.3.0"
