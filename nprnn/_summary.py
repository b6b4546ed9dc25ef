"""The text of ``Sequential.summary()``, laid out as Keras 3 prints it."""

from __future__ import annotations

import numpy as np

_BOX = {"top": "┏┳┓━", "head": "┃┃┃", "rule_head": "┡╇┩━", "row": "│││", "rule": "├┼┤─",
        "bottom": "└┴┘─"}
_ASCII = {"top": "+++-", "head": "|||", "rule_head": "+++=", "row": "|||", "rule": "+++-",
          "bottom": "+++-"}
_WIDTHS = (33, 24, 15)


def _bytes_text(count: int) -> str:
    size = float(count)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.2f} {unit}"
        size /= 1024
    return f"{size:.2f} GB"


def _shape_text(shape) -> str:
    if shape is None:
        return "?"
    return "(" + ", ".join("None" if d is None else str(d) for d in shape) + \
        ("," if len(shape) == 1 else "") + ")"


def format_summary(model, ascii_only=False) -> str:
    """Keras 3's table: ``name (Class)``, output shape, parameter count, then the totals."""
    box = _ASCII if ascii_only else _BOX

    def rule(kind):
        left, middle, right, fill = box[kind]
        return left + middle.join(fill * w for w in _WIDTHS) + right

    def row(kind, cells, align_last_right=True):
        left, middle, right = box[kind]
        texts = []
        for position, (cell, width) in enumerate(zip(cells, _WIDTHS)):
            cell = f" {cell} "
            if position == len(cells) - 1 and align_last_right:
                texts.append(cell.rjust(width))
            else:
                texts.append(cell.ljust(width))
        return left + middle.join(texts) + right

    lines = [f'Model: "{model.name}"', rule("top"),
             row("head", ("Layer (type)", "Output Shape", "Param #")), rule("rule_head")]
    for position, layer in enumerate(model.layers):
        params = f"{layer.count_params():,}" if layer.built else "0 (unbuilt)"
        shape = _shape_text(layer.output_shape) if layer.built else "?"
        lines.append(row("row", (f"{layer.name} ({type(layer).__name__})", shape, params)))
        if position < len(model.layers) - 1:
            lines.append(rule("rule"))
    lines.append(rule("bottom"))
    built = all(layer.built for layer in model.layers)
    total = sum(layer.count_params() for layer in model.layers) if built else 0
    trainable = sum(layer.count_params() for layer in model.layers if layer.trainable) if built \
        else 0
    itemsize = np.dtype(model._dtype()).itemsize
    lines += [f" Total params: {total:,} ({_bytes_text(total * itemsize)})",
              f" Trainable params: {trainable:,} ({_bytes_text(trainable * itemsize)})",
              f" Non-trainable params: {total - trainable:,} "
              f"({_bytes_text((total - trainable) * itemsize)})"]
    return "\n".join(lines)
