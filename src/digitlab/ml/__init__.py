"""Training, evaluation and ONNX export. The only package that imports torch."""
