"""The MedMNIST v2 / MedMNIST+ catalogue: every subset by name, with its official facts.

Checksums, label names, split sizes and licences are those of the ``medmnist`` package (version
3.0.2, ``medmnist/info.py``), which match the Zenodo record 10519652. Files are named
``{name}.npz`` at 28 px and ``{name}_{size}.npz`` at 64, 128 and 224 px (3D subsets: 28 and 64).

Cite MedMNIST as Yang et al., "MedMNIST v2 - A large-scale lightweight benchmark for 2D and 3D
biomedical image classification", Scientific Data 10, 41 (2023), and the original dataset below.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import ConfigError, did_you_mean

__all__ = ["DatasetInfo", "MEDMNIST", "get_info", "list_datasets", "MEDMNIST_CITATION", "ZENODO_RECORD"]

ZENODO_RECORD = "10519652"
MEDMNIST_CITATION = (
    "Jiancheng Yang, Rui Shi, Donglai Wei, Zequan Liu, Lin Zhao, Bilian Ke, Hanspeter Pfister, Bingbing Ni. "
    "MedMNIST v2 - A large-scale lightweight benchmark for 2D and 3D biomedical image classification. "
    "Scientific Data 10, 41 (2023). https://doi.org/10.1038/s41597-022-01721-8"
)


@dataclass(frozen=True)
class DatasetInfo:
    """What medclass knows about one MedMNIST subset."""

    name: str
    title: str
    modality: str
    task: str  # binary | multiclass | multilabel | ordinal
    labels: tuple[str, ...]
    channels: int
    n_samples: dict[str, int]
    md5: dict[int, str]
    license: str
    source: str  # citation of the original data
    spatial_dims: int = 2
    positive_label: int | None = None  # binary tasks: the class a clinician calls "positive"
    notes: str = ""
    citation: str = field(default=MEDMNIST_CITATION, repr=False)

    @property
    def sizes(self) -> tuple[int, ...]:
        return tuple(sorted(self.md5))

    @property
    def num_classes(self) -> int:
        return len(self.labels)

    def filename(self, size: int = 28) -> str:
        self._check_size(size)
        return f"{self.name}.npz" if size == 28 else f"{self.name}_{size}.npz"

    def url(self, size: int = 28) -> str:
        return f"https://zenodo.org/records/{ZENODO_RECORD}/files/{self.filename(size)}?download=1"

    def _check_size(self, size: int) -> None:
        if size not in self.md5:
            raise ConfigError(
                f"{self.title} has no {size} px release. Available sizes: {', '.join(map(str, self.sizes))} "
                f"(set data.size / --size)."
            )


def _info(name, title, modality, task, labels, channels, n, license, md5, source, **kw) -> DatasetInfo:
    return DatasetInfo(name=name, title=title, modality=modality, task=task, labels=tuple(labels),
                       channels=channels, n_samples=dict(zip(("train", "val", "test"), n)), md5=md5,
                       license=license, source=source, **kw)


_KERMANY = ("D. S. Kermany et al., Identifying Medical Diagnoses and Treatable Diseases by Image-Based Deep "
            "Learning. Cell 172(5), 1122-1131 (2018).")
_ORGAN_LABELS = ("bladder", "femur-left", "femur-right", "heart", "kidney-left", "kidney-right", "liver",
                 "lung-left", "lung-right", "pancreas", "spleen")
_ORGAN_SOURCE = ("P. Bilic et al., The Liver Tumor Segmentation Benchmark (LiTS). Medical Image Analysis 84, "
                 "102680 (2023); X. Xu et al., Efficient Multiple Organ Localization in CT Image Using 3D Region "
                 "Proposal Network. IEEE TMI 38(8), 1885-1898 (2019).")

_ALL = [
    _info("pathmnist", "PathMNIST", "colon pathology (H&E)", "multiclass",
          ("adipose", "background", "debris", "lymphocytes", "mucus", "smooth muscle", "normal colon mucosa",
           "cancer-associated stroma", "colorectal adenocarcinoma epithelium"), 3, (89996, 10004, 7180), "CC BY 4.0",
          {28: "a8b06965200029087d5bd730944a56c1", 64: "55aa9c1e0525abe5a6b9d8343a507616",
           128: "ac42d08fb904d92c244187169d1fd1d9", 224: "2c51a510bcdc9cf8ddb2af93af1eadec"},
          "J. N. Kather et al., Predicting survival from colorectal cancer histology slides using deep learning: "
          "A retrospective multicenter study. PLOS Medicine 16(1), e1002730 (2019)."),
    _info("chestmnist", "ChestMNIST", "chest X-ray", "multilabel",
          ("atelectasis", "cardiomegaly", "effusion", "infiltration", "mass", "nodule", "pneumonia", "pneumothorax",
           "consolidation", "edema", "emphysema", "fibrosis", "pleural", "hernia"), 1, (78468, 11219, 22433),
          "CC BY 4.0",
          {28: "02c8a6516a18b556561a56cbdd36c4a8", 64: "9de6cd0b934ebb5b7426cfba5efbae16",
           128: "db107e5590b27930b62dbaf558aebee3", 224: "45bd33e6f06c3e8cdb481c74a89152aa"},
          "X. Wang et al., ChestX-ray8: Hospital-scale Chest X-ray Database and Benchmarks on Weakly-Supervised "
          "Classification and Localization of Common Thorax Diseases. CVPR 2017."),
    _info("dermamnist", "DermaMNIST", "dermatoscope", "multiclass",
          ("actinic keratoses and intraepithelial carcinoma", "basal cell carcinoma", "benign keratosis-like lesions",
           "dermatofibroma", "melanoma", "melanocytic nevi", "vascular lesions"), 3, (7007, 1003, 2005),
          "CC BY-NC 4.0",
          {28: "0744692d530f8e62ec473284d019b0c7", 64: "b70a2f5635c6199aeaa28c31d7202e1f",
           128: "2defd784463fa5243564e855ed717de1", 224: "8974907d8e169bef5f5b96bc506ae45d"},
          "P. Tschandl, C. Rosendahl, H. Kittler, The HAM10000 dataset. Scientific Data 5, 180161 (2018); "
          "N. Codella et al., Skin Lesion Analysis Toward Melanoma Detection 2018. arXiv:1902.03368.",
          notes="Non-commercial licence (CC BY-NC 4.0)."),
    _info("octmnist", "OCTMNIST", "retinal OCT", "multiclass",
          ("choroidal neovascularization", "diabetic macular edema", "drusen", "normal"), 1, (97477, 10832, 1000),
          "CC BY 4.0",
          {28: "c68d92d5b585d8d81f7112f81e2d0842", 64: "e229e9440236b774d9f0dfef9d07bdaf",
           128: "0a97e76651ace45c5d943ee3f65b63ae", 224: "abc493b6d529d5de7569faaef2773ba3"}, _KERMANY),
    _info("pneumoniamnist", "PneumoniaMNIST", "paediatric chest X-ray", "binary", ("normal", "pneumonia"), 1,
          (4708, 524, 624), "CC BY 4.0",
          {28: "28209eda62fecd6e6a2d98b1501bb15f", 64: "8f4eceb4ccffa70c672198ea285246c6",
           128: "05b46931834c231683c68f40c47b2971", 224: "d6a3c71de1b945ea11211b03746c1fe1"}, _KERMANY,
          positive_label=1,
          notes="The test split is the source's validation set: its class balance differs from train/val."),
    _info("retinamnist", "RetinaMNIST", "fundus photograph", "ordinal", ("0", "1", "2", "3", "4"), 3,
          (1080, 120, 400), "CC BY 4.0",
          {28: "bd4c0672f1bba3e3a89f0e4e876791e4", 64: "afda852cc34dcda56f86ad2b2457dbcc",
           128: "e48e916a24454daf90583d4e6efb1a18", 224: "eae7e3b6f3fcbda4ae613ebdcbe35348"},
          "R. Liu et al., DeepDRiD: Diabetic Retinopathy-Grading and Image Quality Estimation Challenge. "
          "Patterns 3(6), 100512 (2022).",
          notes="Diabetic retinopathy grade 0-4; MedMNIST trains it as multi-class."),
    _info("breastmnist", "BreastMNIST", "breast ultrasound", "binary", ("malignant", "normal, benign"), 1,
          (546, 78, 156), "CC BY 4.0",
          {28: "750601b1f35ba3300ea97c75c52ff8f6", 64: "742edef2a1fd1524b2efff4bd7ba9364",
           128: "363e4b3f8d712e9b5de15470a2aaadf1", 224: "b56378a6eefa9fed602bb16d192d4c8b"},
          "W. Al-Dhabyani, M. Gomaa, H. Khaled, A. Fahmy, Dataset of breast ultrasound images. "
          "Data in Brief 28, 104863 (2020).",
          positive_label=0,
          notes="Label 1 is 'normal or benign'; sensitivity and specificity are reported for 'malignant'."),
    _info("bloodmnist", "BloodMNIST", "blood cell microscopy", "multiclass",
          ("basophil", "eosinophil", "erythroblast",
           "immature granulocytes (myelocytes, metamyelocytes and promyelocytes)", "lymphocyte", "monocyte",
           "neutrophil", "platelet"), 3, (11959, 1712, 3421), "CC BY 4.0",
          {28: "7053d0359d879ad8a5505303e11de1dc", 64: "2b94928a2ae4916078ca51e05b6b800b",
           128: "adace1e0ed228fccda1f39692059dd4c", 224: "b718ff6835fcbdb22ba9eacccd7b2601"},
          "A. Acevedo et al., A dataset of microscopic peripheral blood cell images for development of automatic "
          "recognition systems. Data in Brief 30, 105474 (2020)."),
    _info("tissuemnist", "TissueMNIST", "kidney cortex microscopy", "multiclass",
          ("Collecting Duct, Connecting Tubule", "Distal Convoluted Tubule", "Glomerular endothelial cells",
           "Interstitial endothelial cells", "Leukocytes", "Podocytes", "Proximal Tubule Segments",
           "Thick Ascending Limb"), 1, (165466, 23640, 47280), "CC BY 4.0",
          {28: "ebe78ee8b05294063de985d821c1c34b", 64: "123ece2eba09d0aa5d698fda57103344",
           128: "61b955355d7425a89687b06cca3ce0c2", 224: "b077128c4a949f0a4eb01517f9037b9c"},
          "V. Ljosa, K. L. Sokolnicki, A. E. Carpenter, Annotated high-throughput microscopy image sets for "
          "validation (BBBC051). Nature Methods 9(7), 637 (2012)."),
    _info("organamnist", "OrganAMNIST", "abdominal CT (axial)", "multiclass", _ORGAN_LABELS, 1,
          (34561, 6491, 17778), "CC BY 4.0",
          {28: "68e3f8846a6bd62f0c9bf841c0d9eacc", 64: "2dcccc29b88e6da5a01161ef20cda288",
           128: "eeae80d0a227a8d099027e1b3cfd3b60", 224: "50747347e05c87dd3aaf92c49f9f3170"}, _ORGAN_SOURCE),
    _info("organcmnist", "OrganCMNIST", "abdominal CT (coronal)", "multiclass", _ORGAN_LABELS, 1,
          (12975, 2392, 8216), "CC BY 4.0",
          {28: "b9ceb9546e10131b32923c5bbeaea2b1", 64: "3ce34a8724ea6f548e6db4744d03b6a9",
           128: "773c1f009daa3fe5d9a2a201b2a7ed94", 224: "050f5e875dc056f6768abf94ec9995d1"}, _ORGAN_SOURCE),
    _info("organsmnist", "OrganSMNIST", "abdominal CT (sagittal)", "multiclass", _ORGAN_LABELS, 1,
          (13932, 2452, 8827), "CC BY 4.0",
          {28: "9ab87b696fb54e2a387ebe992d6ed5f1", 64: "53a6d115339d874c25e309a994ff46d3",
           128: "ded0c5fa01a95dc4978b956f613e9b8e", 224: "b354719e553fbbb2513d5533f52a4cb1"}, _ORGAN_SOURCE),
    _info("organmnist3d", "OrganMNIST3D", "abdominal CT (3D)", "multiclass",
          ("liver", "kidney-right", "kidney-left", "femur-right", "femur-left", "bladder", "heart", "lung-right",
           "lung-left", "spleen", "pancreas"), 1, (971, 161, 610), "CC BY 4.0",
          {28: "a0c5a1ff56af4f155c46d46fbb45a2fe", 64: "58a2205adf14a9d0a189cb06dc78bf10"}, _ORGAN_SOURCE,
          spatial_dims=3),
    _info("nodulemnist3d", "NoduleMNIST3D", "chest CT (3D)", "binary", ("benign", "malignant"), 1,
          (1158, 165, 310), "CC BY 4.0",
          {28: "8755a7e9e05a4d9ce80a24c3e7a256f3", 64: "c47c5b7d457bf6332200d2ea6d64ecd8"},
          "S. G. Armato III et al., The Lung Image Database Consortium (LIDC) and Image Database Resource "
          "Initiative (IDRI). Medical Physics 38(2), 915-931 (2011).", spatial_dims=3, positive_label=1),
    _info("adrenalmnist3d", "AdrenalMNIST3D", "abdominal CT shape (3D)", "binary", ("normal", "hyperplasia"), 1,
          (1188, 98, 298), "CC BY 4.0",
          {28: "bbd3c5a5576322bc4cdfea780653b1ce", 64: "17721accfe9fb005146a47d33bc54b2f"},
          "New data from Zhongshan Hospital, Fudan University, released with MedMNIST v2.",
          spatial_dims=3, positive_label=1),
    _info("fracturemnist3d", "FractureMNIST3D", "chest CT (3D)", "multiclass",
          ("buckle rib fracture", "nondisplaced rib fracture", "displaced rib fracture"), 1, (1027, 103, 240),
          "CC BY 4.0", {28: "6aa7b0143a6b42da40027a9dda61302f", 64: "f01d7e6316aedf4210da0da5b7437b42"},
          "L. Jin et al., Deep-learning-assisted detection and segmentation of rib fractures from CT scans: "
          "Development and validation of FracNet. EBioMedicine 62, 103106 (2020).", spatial_dims=3),
    _info("vesselmnist3d", "VesselMNIST3D", "brain MRA shape (3D)", "binary", ("vessel", "aneurysm"), 1,
          (1335, 191, 382), "CC BY 4.0",
          {28: "b41fd4f7e7e2feedddb201585ecafa1b", 64: "6bb274a8846e1097066dcd64e2c4520f"},
          "X. Yang, D. Xia, T. Kin, T. Igarashi, IntrA: 3D Intracranial Aneurysm Dataset for Deep Learning. "
          "CVPR 2020.", spatial_dims=3, positive_label=1),
    _info("synapsemnist3d", "SynapseMNIST3D", "electron microscopy (3D)", "binary",
          ("inhibitory synapse", "excitatory synapse"), 1, (1230, 177, 352), "CC BY 4.0",
          {28: "1235b78a3cd6280881dd7850a78eadb6", 64: "43bd14ebf3af9d3dd072446fedc14d5e"},
          "New data (adult rat brain, multi-beam scanning electron microscopy) released with MedMNIST v2.",
          spatial_dims=3, positive_label=1),
]

MEDMNIST: dict[str, DatasetInfo] = {d.name: d for d in _ALL}


def list_datasets(spatial_dims: int | None = None) -> list[str]:
    """Names of the MedMNIST subsets, optionally only the 2D (``2``) or 3D (``3``) ones."""
    return [n for n, d in MEDMNIST.items() if spatial_dims is None or d.spatial_dims == spatial_dims]


def get_info(name: str) -> DatasetInfo:
    """The catalogue entry for ``name`` (case-insensitive); an unknown name suggests the nearest one."""
    key = name.strip().lower()
    if key in MEDMNIST:
        return MEDMNIST[key]
    raise ConfigError(
        f"Unknown dataset {name!r}.{did_you_mean(key, MEDMNIST)} "
        f"Run `medclass data list` to see the {len(MEDMNIST)} MedMNIST datasets, or pass a path to an .npz file."
    )
