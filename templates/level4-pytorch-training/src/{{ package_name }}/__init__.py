"""Train and evaluate a neural network with PyTorch.

Configuration, data, model, training and evaluation: one short module each. Start
reading at train.py.
"""
