"""Train, evaluate and use a neural network with PyTorch.

Configuration, data, models, training, evaluation, prediction and export: one short
module each. Start reading at train.py.
"""
