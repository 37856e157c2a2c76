"""Datasets: the MedMNIST catalogue, finding/downloading files, manifests of your own images, the input pipeline,
in-memory splits and batch loading. Submodules are imported where they are used (``medclass.data.medmnist`` is
the light catalogue the command line lists without loading PyTorch)."""
