"""Configuration as a file: the codes, `config_export` and `config_apply` (SPEC section 5)."""
