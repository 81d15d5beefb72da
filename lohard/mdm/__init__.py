"""Masked diffusion models in torch: MDMs, losses, samplers, training, pi-learners, Sudoku."""

try:
    import torch  # noqa: F401
except ImportError as err:  # pragma: no cover - exercised only without torch
    raise ModuleNotFoundError(
        "lohard.mdm needs PyTorch; install it with `pip install lohard[torch]`", name="torch"
    ) from err

from lohard.mdm._config import MODEL_CONFIGS, MDMConfig, TrainConfig, model_config
from lohard.mdm._loss import LOSS_KINDS, alpha, dalpha, loss_masks, mdm_loss
from lohard.mdm._metrics import RULES, observation_accuracy, observation_correct
from lohard.mdm._model import (
    MaskedDiffusionTransformer,
    RMSNorm,
    build_model,
    check_fits,
)
from lohard.mdm._oracle import MAX_ORACLE_STATES, BPOracle, ExactOracle, PosteriorOracle
from lohard.mdm._pilearner import (
    ORDERS,
    PILEARNER_SIZES,
    PiLearner,
    PiLearnerConfig,
    PiLearnerRun,
    PiTrainConfig,
    closer_order,
    evaluate_nll,
    lo_entropy,
    natural_order,
    order_nll,
    pilearner_config,
    train_pilearner,
    uniform_orders,
)
from lohard.mdm._sampling import (
    DEFAULT_NOISE_SCALE,
    K_MODES,
    NOISES,
    POSITION_SCORES,
    REMASK_MODES,
    SAMPLERS,
    Remask,
    position_scores,
    sample,
    select_top_k,
)
from lohard.mdm._sudoku_config import SudokuTrainConfig
from lohard.mdm._sudoku_decode import arm_decode, bp_oracle_decode, mdm_decode
from lohard.mdm._sudoku_eval import evaluate_sudoku, order_agreement
from lohard.mdm._sudoku_train import load_sudoku_model, train_sudoku
from lohard.mdm._train import (
    CKPT_FORMAT,
    CKPT_NAME,
    CKPT_VERSION,
    Checkpoint,
    TrainResult,
    distribution_hash,
    evaluate,
    load_checkpoint,
    resolve_distribution,
    select_device,
    snapshot_path,
    train,
)

__all__ = [
    "MDMConfig",
    "MODEL_CONFIGS",
    "model_config",
    "TrainConfig",
    "MaskedDiffusionTransformer",
    "RMSNorm",
    "build_model",
    "check_fits",
    "ExactOracle",
    "PosteriorOracle",
    "BPOracle",
    "MAX_ORACLE_STATES",
    "mdm_loss",
    "loss_masks",
    "alpha",
    "dalpha",
    "LOSS_KINDS",
    "sample",
    "select_top_k",
    "SAMPLERS",
    "POSITION_SCORES",
    "REMASK_MODES",
    "Remask",
    "position_scores",
    "K_MODES",
    "NOISES",
    "DEFAULT_NOISE_SCALE",
    "observation_accuracy",
    "observation_correct",
    "RULES",
    "train",
    "snapshot_path",
    "evaluate",
    "TrainResult",
    "load_checkpoint",
    "Checkpoint",
    "resolve_distribution",
    "distribution_hash",
    "select_device",
    "CKPT_FORMAT",
    "CKPT_NAME",
    "CKPT_VERSION",
    # pi-learners (Sec. 3.2)
    "PiLearner",
    "PiLearnerConfig",
    "PiTrainConfig",
    "PiLearnerRun",
    "PILEARNER_SIZES",
    "ORDERS",
    "pilearner_config",
    "train_pilearner",
    "evaluate_nll",
    "order_nll",
    "natural_order",
    "closer_order",
    "uniform_orders",
    "lo_entropy",
    # Sudoku (MDM and ARM decoders, BP ordering oracle)
    "SudokuTrainConfig",
    "train_sudoku",
    "load_sudoku_model",
    "mdm_decode",
    "arm_decode",
    "bp_oracle_decode",
    "evaluate_sudoku",
    "order_agreement",
]
