"""Image to digit without torch: MNIST-style preprocessing, onnxruntime, the predictor."""
