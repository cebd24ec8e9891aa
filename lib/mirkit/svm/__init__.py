"""SVM training and prediction (libsvm-official), mirkit model files."""
