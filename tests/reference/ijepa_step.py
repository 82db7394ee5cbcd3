"""One I-JEPA train step in PyTorch, timed: the reference `deno task bench --vs-torch` compares with.

Written from the paper (Assran et al., CVPR 2023) and the shapes of the official code
(facebookresearch/ijepa): a ViT context encoder on the context patches, a narrower predictor that
sees the context tokens plus one mask token per target patch (each target block in its own
sequence, the context repeated per block), an EMA target encoder on the whole image whose output
is layer-normalised (no affine) and then gathered, smooth-L1 loss, AdamW (no weight decay on biases
and 1-D parameters), EMA update. float32 on the CPU; on CUDA ("device": "cuda") float32, or bf16
autocast as the official code trains ("autocast": "bf16").

The masks are not drawn here: the bench writes the batches of masks its own masker drew to a JSON
file, so both sides process exactly the same tokens.

Input (JSON, path as the only argument):
  {"config": {"image": 28, "patch": 4, "channels": 1, "width": 192, "depth": 6, "heads": 3,
              "mlp": 768, "pred_width": 96, "pred_depth": 4, "pred_heads": 3, "eps": 1e-6},
   "batch": 64, "threads": 2, "warmup": 2, "runs": 5, "device": "cpu", "autocast": null,
   "masks": [{"context": [[...Lc indices] x B], "targets": [[[...Lt] x B] x M]}, ...]}
Output: one JSON line on stdout: median_ms, img_per_s, step_ms (every timed step), peak_rss_bytes,
context_len / target_len per timed step, torch version and threads, and the BLAS / OpenMP libraries
this process actually mapped (from /proc/self/maps, so a LD_LIBRARY_PATH override shows).

tests/reference/official_step.py times the official modules on the same input with `time_steps`.
"""

import contextlib
import ctypes
import json
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


def peak_rss_bytes() -> int:
    """This process's peak resident memory (VmHWM). Not ru_maxrss: Linux carries that over exec
    from the parent, so a child of a big process would report the parent's peak."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


def loaded_libraries() -> list:
    """The BLAS, LAPACK and OpenMP runtime files this process has mapped (Linux), e.g.
    /usr/lib/x86_64-linux-gnu/openblas-openmp/libblas.so.3: which build torch really calls."""
    found = set()
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                path = line.split()[-1]
                name = path.rsplit("/", 1)[-1]
                if path.startswith("/") and any(k in name for k in ("blas", "lapack", "gomp", "iomp", "mkl")):
                    found.add(path)
    except OSError:
        pass
    return sorted(found)


def blas_cores() -> list:
    """What OpenBLAS says it runs on, for each OpenBLAS this process has mapped: its kernel family
    (e.g. Haswell or Cooperlake), which OPENBLAS_CORETYPE can force."""
    cores = []
    for path in loaded_libraries():
        try:
            lib = ctypes.CDLL(path)
            lib.openblas_get_corename.restype = ctypes.c_char_p
            cores.append(lib.openblas_get_corename().decode())
        except (OSError, AttributeError):
            continue
    return sorted(set(cores))


def time_steps(step, batches, spec: dict, B: int) -> dict:
    """Run `step(ctx, tgt)` over the mask batches: spec's warm-up steps, then its timed runs. Returns
    the JSON summary both reference scripts print."""
    warmup, runs = int(spec.get("warmup", 2)), int(spec.get("runs", 5))
    times, lc, lt = [], [], []
    for i in range(warmup + runs):
        ctx, tgt = batches[i % len(batches)]
        t0 = time.perf_counter()
        step(ctx, tgt)
        dt = time.perf_counter() - t0
        if i >= warmup:
            times.append(dt * 1000)
            lc.append(int(ctx.shape[1]))
            lt.append(int(tgt.shape[2]))
    med = sorted(times)[len(times) // 2]
    return {
        "median_ms": med,
        "img_per_s": B / med * 1000,
        "step_ms": times,
        "peak_rss_bytes": peak_rss_bytes(),
        "context_len": lc,
        "target_len": lt,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "libraries": loaded_libraries(),
        "blas_cores": blas_cores(),
    }


def device_of(spec: dict) -> torch.device:
    """The spec's device ("cpu" or "cuda"); a clear exit when CUDA is asked for and absent."""
    name = spec.get("device", "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        sys.exit(f"expected a CUDA device (--device cuda), but torch {torch.__version__} sees none")
    if name not in ("cpu", "cuda"):
        sys.exit(f"expected device cpu or cuda, got {name!r}")
    return torch.device(name)


def autocast_of(spec: dict, device: torch.device):
    """bf16 autocast on CUDA when the spec asks for it, else a context that does nothing."""
    if spec.get("autocast") == "bf16":
        if device.type != "cuda":
            sys.exit("bf16 autocast is timed on CUDA only")
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def read_masks(spec: dict) -> list:
    """The bench's mask batches as (context [B, Lc], targets [M, B, Lt]) index tensors."""
    return [
        (torch.tensor(mb["context"], dtype=torch.long), torch.tensor(mb["targets"], dtype=torch.long))
        for mb in spec["masks"]
    ]


def sincos_pos_embed(grid: int, dim: int) -> torch.Tensor:
    """Fixed 2-D sin-cos position embedding [grid*grid, dim], as the official get_2d_sincos_pos_embed."""
    def one_d(d: int, pos: torch.Tensor) -> torch.Tensor:
        omega = torch.arange(d // 2, dtype=torch.float64) / (d / 2.0)
        omega = 1.0 / 10000 ** omega
        out = pos.reshape(-1)[:, None] * omega[None, :]
        return torch.cat([torch.sin(out), torch.cos(out)], dim=1)

    gh, gw = torch.meshgrid(
        torch.arange(grid, dtype=torch.float64), torch.arange(grid, dtype=torch.float64), indexing="xy"
    )
    # official: grid = meshgrid(grid_w, grid_h); emb_h from grid[0], emb_w from grid[1]
    emb = torch.cat([one_d(dim // 2, gh), one_d(dim // 2, gw)], dim=1)
    return emb.float()


class Attention(nn.Module):
    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.scale = (dim // heads) ** -0.5
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, N, C = x.shape
        qkv = self.qkv(x).reshape(B, N, 3, self.heads, C // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]  # [B, H, N, hd]
        attn = ((q @ k.transpose(-2, -1)) * self.scale).softmax(dim=-1)
        return self.proj((attn @ v).transpose(1, 2).reshape(B, N, C))


class Block(nn.Module):
    def __init__(self, dim: int, heads: int, hidden: int, eps: float):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=eps)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, eps=eps)
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.fc2(F.gelu(self.fc1(self.norm2(x))))


def gather_tokens(x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """x [B, N, D], idx [B, K] -> [B, K, D] (the official apply_masks for one mask)."""
    return torch.gather(x, 1, idx.unsqueeze(-1).expand(-1, -1, x.shape[-1]))


class Encoder(nn.Module):
    def __init__(self, c: dict):
        super().__init__()
        self.patch = c["patch"]
        pdim = c["patch"] ** 2 * c["channels"]
        self.embed = nn.Linear(pdim, c["width"])  # = the official stride-p convolution
        grid = c["image"] // c["patch"]
        self.register_buffer("pos", sincos_pos_embed(grid, c["width"]))
        self.blocks = nn.ModuleList(
            [Block(c["width"], c["heads"], c["mlp"], c["eps"]) for _ in range(c["depth"])]
        )
        self.norm = nn.LayerNorm(c["width"], eps=c["eps"])

    def forward(self, patches: torch.Tensor, idx: torch.Tensor = None) -> torch.Tensor:
        x = self.embed(patches) + self.pos
        if idx is not None:
            x = gather_tokens(x, idx)
        for b in self.blocks:
            x = b(x)
        return self.norm(x)


class Predictor(nn.Module):
    def __init__(self, c: dict):
        super().__init__()
        D, Dp = c["width"], c["pred_width"]
        self.embed = nn.Linear(D, Dp)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, Dp))
        nn.init.trunc_normal_(self.mask_token, std=0.02)
        grid = c["image"] // c["patch"]
        self.register_buffer("pos", sincos_pos_embed(grid, Dp))
        self.blocks = nn.ModuleList(
            [Block(Dp, c["pred_heads"], 4 * Dp, c["eps"]) for _ in range(c["pred_depth"])]
        )
        self.norm = nn.LayerNorm(Dp, eps=c["eps"])
        self.proj = nn.Linear(Dp, D)

    def forward(self, ctx: torch.Tensor, ctx_idx: torch.Tensor, tgt_idx: torch.Tensor) -> torch.Tensor:
        # ctx [B, Lc, D]; ctx_idx [B, Lc]; tgt_idx [M, B, Lt] -> predictions [M*B, Lt, D]
        B, Lc, _ = ctx.shape
        M, _, Lt = tgt_idx.shape
        pos = self.pos.unsqueeze(0).expand(B, -1, -1)
        x = self.embed(ctx) + gather_tokens(pos, ctx_idx)
        x = x.repeat(M, 1, 1)  # block-major [M*B, Lc, Dp]
        q = torch.cat([gather_tokens(pos, tgt_idx[m]) for m in range(M)], dim=0) + self.mask_token
        x = torch.cat([x, q], dim=1)
        for b in self.blocks:
            x = b(x)
        return self.proj(self.norm(x)[:, Lc:])


def init_weights(m: nn.Module) -> None:
    if isinstance(m, nn.Linear):
        nn.init.trunc_normal_(m.weight, std=0.02)
        nn.init.zeros_(m.bias)


def patchify(images: torch.Tensor, p: int) -> torch.Tensor:
    """NCHW images -> [B, N, p*p*C] patches in row-major grid order."""
    B, C, H, W = images.shape
    x = images.reshape(B, C, H // p, p, W // p, p).permute(0, 2, 4, 3, 5, 1)
    return x.reshape(B, (H // p) * (W // p), p * p * C)


def main() -> None:
    spec = json.load(open(sys.argv[1]))
    c = spec["config"]
    torch.set_num_threads(int(spec.get("threads", 2)))
    torch.manual_seed(0)
    B = int(spec["batch"])
    dev = device_of(spec)
    encoder = Encoder(c).to(dev)
    predictor = Predictor(c).to(dev)
    encoder.apply(init_weights)
    predictor.apply(init_weights)
    target = Encoder(c).to(dev)
    target.load_state_dict(encoder.state_dict())
    for p in target.parameters():
        p.requires_grad = False
    decay, no_decay = [], []
    for m in (encoder, predictor):
        for n, p in m.named_parameters():
            (no_decay if n.endswith("bias") or p.ndim == 1 else decay).append(p)
    opt = torch.optim.AdamW([{"params": decay}, {"params": no_decay, "weight_decay": 0}], lr=1e-4, weight_decay=0.04)
    images = torch.randn(B, c["channels"], c["image"], c["image"]).to(dev)
    batches = [(a.to(dev), b.to(dev)) for a, b in read_masks(spec)]  # (context [B, Lc], targets [M, B, Lt])
    cast = autocast_of(spec, dev)

    def step(ctx: torch.Tensor, tgt: torch.Tensor) -> float:
        patches = patchify(images, c["patch"])
        M, _, Lt = tgt.shape
        with cast:
            with torch.no_grad():
                h = F.layer_norm(target(patches), (c["width"],))
                h = torch.cat([gather_tokens(h, tgt[m]) for m in range(M)], dim=0)  # [M*B, Lt, D]
            z = predictor(encoder(patches, ctx), ctx, tgt)
            loss = F.smooth_l1_loss(z.float(), h.float())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        with torch.no_grad():
            m = 0.996
            for q, k in zip(encoder.parameters(), target.parameters()):
                k.mul_(m).add_((1.0 - m) * q.detach())
        return float(loss)  # waits for the GPU, so the step time is the work's

    print(json.dumps({**time_steps(step, batches, spec, B), "device": str(dev), "autocast": spec.get("autocast")}))


if __name__ == "__main__":
    main()
