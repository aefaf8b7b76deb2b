"""Keras models and their training: the backbones and their packaged weights (`backbones`, `pth`), the
classifier (`model`), the two-phase fit (`training`) and the TFLite conversions (`conversion`). Editing them reruns
`train`, `prune`, `deploy`, the conversions and the students; no tfmot code lives here, so editing the compression
never retrains the baseline."""
