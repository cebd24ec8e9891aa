"""mirkit: describe music audio and classify it with SVM and TensorFlow models.

Unix filters exchanging Essentia-layout descriptor records (see mirkit(7)).
"""

__version__ = "0.1.0"
