"""The firmware contract: the generated header (`contract`) and C arrays (`c_array`). Editing them reruns
`firmware` (and `micro` for `c_array`)."""
