"""Continue an ijepa-deno run in the official I-JEPA code (facebookresearch/ijepa).

Usage (from a checkout of the official repository, with PyTorch installed):

    PYTHONPATH=. python to_official.py runs/quick-.../final.safetensors out.pth.tar

Reads our safetensors file (plain Python + torch, no extra package), builds the official encoder,
predictor and target encoder classes with the file's config (LayerNorm eps included), loads every
tensor with strict key checks, prints what it loaded, and writes a checkpoint in the official
train.py layout (encoder, predictor, target_encoder, opt, scaler, epoch, ...) that the official
`load_checkpoint` reads without falling back to epoch 0 (it swallows errors and restarts when a
part is missing or does not fit).

The official `init_model` (src/helper.py) builds only its named models (`vit_tiny` .. `vit_giant`:
3 channels, fixed width/depth/heads, MLP ratio 4 (48/11 for vit_giant), LayerNorm eps 1e-6) and a
`vit_predictor` with the encoder's head count and MLP ratio 4. After writing the file this script
says either which config values make the official train.py continue from it, or, for a model
outside that family (e.g. our 1-channel, depth-6 `quick` preset), which conditions fail and what
`init_model` must build instead: without that edit the official loader raises inside
`load_checkpoint`, which logs it and silently continues from random weights at epoch 0.
"""
import json
import math
import os
import struct
import sys
from functools import partial

import torch
import torch.nn as nn

from src.models.vision_transformer import VisionTransformer, VisionTransformerPredictor

DTYPES = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16, "I64": torch.int64}

# The official named models, as src/models/vision_transformer.py (52c1ae9) hard-codes them:
# (embed_dim, depth, num_heads, mlp_ratio). All take in_chans=3 (the default) and LayerNorm eps 1e-6;
# vit_predictor uses mlp_ratio 4 and eps 1e-6 and gets num_heads=encoder.num_heads from init_model.
# Copied rather than introspected: building vit_giant to read its numbers would take ~4 GB.
OFFICIAL_MODELS = {
    "vit_tiny": (192, 12, 3, 4),
    "vit_small": (384, 12, 6, 4),
    "vit_base": (768, 12, 12, 4),
    "vit_large": (1024, 24, 16, 4),
    "vit_huge": (1280, 32, 16, 4),
    "vit_giant": (1408, 40, 16, 48 / 11),
}
OFFICIAL_EPS = 1e-6
OFFICIAL_PREDICTOR_MLP_RATIO = 4
# torch.cuda.amp.GradScaler's default state_dict() (torch/cuda/amp/grad_scaler.py). The official
# train.py makes a GradScaler when meta.use_bfloat16 (true in every official config) and
# load_checkpoint calls scaler.load_state_dict(checkpoint['scaler']): None raises there (and an empty
# dict too, which is what a GradScaler built without CUDA returns), which the loader swallows and
# restarts at epoch 0. So the literal default state, not GradScaler().state_dict().
GRAD_SCALER_DEFAULT_STATE = {"scale": 2.0**16, "growth_factor": 2.0, "backoff_factor": 0.5,
                             "growth_interval": 2000, "_growth_tracker": 0}
# The official training objective; our config fields that change it have no counterpart there.
OFFICIAL_OBJECTIVE = {"targetMode": "representation", "loss": "smooth_l1", "varianceWeight": 0,
                      "covarianceWeight": 0, "sigregWeight": 0, "targetNorm": "layernorm"}
IMAGENET_MEAN, IMAGENET_STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    meta = header.pop("__metadata__", {})
    tensors = {}
    for name, info in header.items():
        a, b = info["data_offsets"]
        t = torch.frombuffer(bytearray(data[a:b]), dtype=DTYPES[info["dtype"]])
        tensors[name] = t.reshape(info["shape"]).clone()
    return tensors, meta


def part(tensors, prefix):
    return {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}


def mlp_ratio_for(hidden, dim):
    """A ratio with int(dim * ratio) == hidden, as the official Block computes its MLP width."""
    r = hidden / dim
    if int(dim * r) != hidden:
        r = math.nextafter(r, math.inf)
    assert int(dim * r) == hidden, (hidden, dim)
    return r


def predictor_mlp_hidden(tensors, cfg):
    w = tensors.get("predictor.predictor_blocks.0.mlp.fc1.weight")
    return int(w.shape[0]) if w is not None else OFFICIAL_PREDICTOR_MLP_RATIO * cfg["predictorWidth"]


def official_family(cfg, tensors):
    """(the official model name or None, the failing conditions as sentences)."""
    fails = []
    if cfg["channels"] != 3:
        fails.append(f"channels {cfg['channels']} (every official model takes 3)")
    shape = (cfg["width"], cfg["depth"], cfg["heads"])
    name = next((n for n, m in OFFICIAL_MODELS.items() if m[:3] == shape), None)
    if name is None:
        same = next((n for n, m in OFFICIAL_MODELS.items() if m[0] == cfg["width"]), None)
        if same is not None:  # name what differs from the official model of this width
            m = OFFICIAL_MODELS[same]
            for k, i in (("depth", 1), ("heads", 2)):
                if cfg[k] != m[i]:
                    fails.append(f"{k} {cfg[k]} (official {same}, width {m[0]}: {k} {m[i]})")
        else:
            table = ", ".join(f"{n} {m[0]}/{m[1]}/{m[2]}" for n, m in OFFICIAL_MODELS.items())
            fails.append(f"width {shape[0]}, depth {shape[1]}, heads {shape[2]}: no official model has width "
                         f"{shape[0]} (width/depth/heads: {table})")
        if cfg["mlpHidden"] != 4 * cfg["width"]:
            fails.append(f"mlpHidden {cfg['mlpHidden']} is not 4 x width {cfg['width']}")
    else:
        want = int(cfg["width"] * OFFICIAL_MODELS[name][3])
        if cfg["mlpHidden"] != want:
            fails.append(f"mlpHidden {cfg['mlpHidden']} (official {name}: {want})")
    eps = cfg.get("layerNormEps", OFFICIAL_EPS)
    if not math.isclose(eps, OFFICIAL_EPS, rel_tol=1e-9):
        fails.append(f"layerNormEps {eps} (official: {OFFICIAL_EPS})")
    if cfg["predictorHeads"] != cfg["heads"]:
        fails.append(f"predictorHeads {cfg['predictorHeads']} != heads {cfg['heads']} "
                     "(init_model gives the predictor num_heads=encoder.num_heads)")
    ph = predictor_mlp_hidden(tensors, cfg)
    if ph != OFFICIAL_PREDICTOR_MLP_RATIO * cfg["predictorWidth"]:
        fails.append(f"predictor MLP hidden {ph} is not {OFFICIAL_PREDICTOR_MLP_RATIO} x predictorWidth "
                     f"{cfg['predictorWidth']} (vit_predictor's mlp_ratio)")
    return (name if not fails else None), fails


def build(cfg, tensors):
    """The official classes with the file's shapes: keyword arguments and models."""
    eps = cfg.get("layerNormEps", OFFICIAL_EPS)
    enc_kw = dict(img_size=[cfg["imageSize"]], patch_size=cfg["patchSize"], in_chans=cfg["channels"],
                  embed_dim=cfg["width"], depth=cfg["depth"], num_heads=cfg["heads"],
                  mlp_ratio=mlp_ratio_for(cfg["mlpHidden"], cfg["width"]), qkv_bias=True)
    pred_kw = dict(embed_dim=cfg["width"], predictor_embed_dim=cfg["predictorWidth"],
                   depth=cfg["predictorDepth"], num_heads=cfg["predictorHeads"],
                   mlp_ratio=mlp_ratio_for(predictor_mlp_hidden(tensors, cfg), cfg["predictorWidth"]),
                   qkv_bias=True)
    # The official factories pass norm_layer=partial(nn.LayerNorm, eps=1e-6); the classes' own default
    # (nn.LayerNorm, eps 1e-5) would silently change every output. Use the file's eps.
    norm = partial(nn.LayerNorm, eps=eps)
    encoder = VisionTransformer(**enc_kw, norm_layer=norm)
    target = VisionTransformer(**enc_kw, norm_layer=norm)
    predictor = VisionTransformerPredictor(num_patches=encoder.patch_embed.num_patches, **pred_kw,
                                           norm_layer=norm)
    return enc_kw, pred_kw, eps, encoder, target, predictor


def kwargs_text(kw, eps):
    return ", ".join([f"{k}={v!r}" for k, v in kw.items()] + [f"norm_layer=partial(torch.nn.LayerNorm, eps={eps!r})"])


def advice(cfg, meta, tensors, dst, enc_kw, pred_kw, eps):
    name, fails = official_family(cfg, tensors)
    common = [f"  mask.patch_size: {cfg['patchSize']}", f"  data.crop_size: {cfg['imageSize']}",
              f"  meta.read_checkpoint: {dst}   (train.py joins it onto logging.folder; give an absolute path)",
              "  meta.load_checkpoint: true"]
    if name is not None:
        print(f"official family: {name} (channels 3, width/depth/heads {cfg['width']}/{cfg['depth']}/{cfg['heads']}, "
              f"mlpHidden {cfg['mlpHidden']}, predictor heads = heads, predictor MLP ratio "
              f"{OFFICIAL_PREDICTOR_MLP_RATIO}, LayerNorm eps {OFFICIAL_EPS}): the official init_model builds it.")
        print("To continue in the official train.py, set in its config yaml:")
        print("\n".join([f"  meta.model_name: {name}", f"  meta.pred_depth: {cfg['predictorDepth']}",
                         f"  meta.pred_emb_dim: {cfg['predictorWidth']}"] + common))
    else:
        print("NOT in the official family: the official init_model (src/helper.py) cannot build this model, because")
        print("\n".join(f"  - {f}" for f in fails))
        print("Without an edit, the official load_checkpoint raises on load_state_dict, logs \"Encountered exception "
              "when loading checkpoint\" and training continues from RANDOM weights at epoch 0.")
        print("To continue, make init_model build (with `from functools import partial`):")
        print(f"  encoder = vit.VisionTransformer({kwargs_text(enc_kw, eps)})")
        print("  predictor = vit.VisionTransformerPredictor(num_patches=encoder.patch_embed.num_patches, "
              f"{kwargs_text(pred_kw, eps)})")
        print("and set in its config yaml (meta.model_name, pred_depth and pred_emb_dim are then unused):")
        print("\n".join(common))
        if cfg["channels"] != 3:
            print(f"The official data pipeline yields 3-channel RGB images: a {cfg['channels']}-channel model "
                  "also needs its transforms changed.")
    # Things that load fine but differ from what the official code does next.
    diff = [f"{k} {cfg[k]!r}" for k, v in OFFICIAL_OBJECTIVE.items() if k in cfg and cfg[k] != v]
    if diff:
        print(f"note: the official train.py trains with its own objective, without this run's {', '.join(diff)}.")
    mean = json.loads(meta.get("mean", "null"))
    if mean is not None and cfg["channels"] == 3 and not all(abs(a - b) < 1e-3 for a, b in zip(mean, IMAGENET_MEAN)):
        print(f"note: this run normalised inputs with mean {mean} / std {meta.get('std')}; the official transforms "
              f"use ImageNet's {IMAGENET_MEAN} / {IMAGENET_STD}.")
    print("note: the official schedules (lr warmup, weight decay, EMA momentum, masks) start again at epoch 0, "
          "and AdamW's moments start empty.")


def main(src, dst):
    tensors, meta = read_safetensors(src)
    if meta.get("format") != "ijepa-deno-weights":
        sys.exit(f"{src}: not an ijepa-deno weights file")
    cfg = json.loads(meta["config"])
    enc_kw, pred_kw, eps, encoder, target, predictor = build(cfg, tensors)
    for name, model in (("encoder", encoder), ("target_encoder", target), ("predictor", predictor)):
        sd = part(tensors, name + ".")
        if not sd and name == "target_encoder":
            sd = part(tensors, "encoder.")  # weights-only export: the target starts as the encoder
        msg = model.load_state_dict(sd, strict=True)
        print(f"{name}: loaded {len(sd)} tensors ({sum(v.numel() for v in sd.values())} values), {msg}")
    # The official optimizer layout (init_opt's 4 groups); its state starts empty here.
    groups = [
        {"params": [p for n, p in encoder.named_parameters() if "bias" not in n and len(p.shape) != 1]},
        {"params": [p for n, p in predictor.named_parameters() if "bias" not in n and len(p.shape) != 1]},
        {"params": [p for n, p in encoder.named_parameters() if "bias" in n or len(p.shape) == 1],
         "WD_exclude": True, "weight_decay": 0},
        {"params": [p for n, p in predictor.named_parameters() if "bias" in n or len(p.shape) == 1],
         "WD_exclude": True, "weight_decay": 0},
    ]
    opt = torch.optim.AdamW(groups)
    wrap = lambda m: {"module." + k: v for k, v in m.state_dict().items()}  # DDP's prefix, as train.py saves
    step = int(json.loads(meta.get("step", "0")))
    # epoch 0: our steps are not the official epochs (those depend on its data set and batch size).
    torch.save({"encoder": wrap(encoder), "predictor": wrap(predictor), "target_encoder": wrap(target),
                "opt": opt.state_dict(), "scaler": dict(GRAD_SCALER_DEFAULT_STATE), "epoch": 0, "loss": None,
                "batch_size": None, "world_size": 1, "lr": None, "ijepa_deno_step": step}, dst)
    print(f"wrote {dst} (our step {step})")
    advice(cfg, meta, tensors, os.path.abspath(dst), enc_kw, pred_kw, eps)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__.split("\n\n")[1])
    main(*sys.argv[1:3])
