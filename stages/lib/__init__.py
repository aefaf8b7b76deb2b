"""Library code shared by the stages, one module per noun."""
