"""How good a model version is: test-split evaluation with onnxruntime, and the report figures."""
