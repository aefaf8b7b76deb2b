"""The report from metrics alone: rows, paired comparisons, the seed lab's verdicts, boards and the pick per
board, the README's cells, the headline metrics and the figures. Editing them reruns `report` (and `firmware` for
`rows`)."""
