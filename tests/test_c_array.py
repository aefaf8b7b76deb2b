"""The C array holds the model byte for byte, aligned, with its length and measured arena."""

from __future__ import annotations

import re

from stages.lib.firmware import c_array


def test_c_array_holds_the_model_byte_for_byte():
    model = bytes(range(256)) * 3 + b"\x01\x02"
    source, header = c_array.c_array(model, "edge_model", 12345)
    body = source[source.index("{") + 1 : source.index("}")]
    assert bytes(int(value, 16) for value in re.findall(r"0x([0-9a-f]{2})", body)) == model
    assert "alignas(16) const unsigned char edge_model[]" in source and f"edge_model_len = {len(model)};" in source
    assert "edge_model_arena_bytes = 12345;" in header
