"""Using a trained run: load it back (:func:`load_run`), predict with it (:mod:`.predict`,
``scalarize predict``) and export it (:mod:`.export`, ``scalarize export``). It reads the run
store and rebuilds the model as the run built it; it never trains."""

from scalarize.trained.export import FORMATS, export_model, run_exported
from scalarize.trained.load import TrainedModel, load_run
from scalarize.trained.predict import predict_to_file, predictions

__all__ = ["FORMATS", "TrainedModel", "export_model", "load_run", "predict_to_file",
           "predictions", "run_exported"]
