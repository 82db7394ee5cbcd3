// tests/reference/to_official.py: our weights continue in the official I-JEPA code. A file in the official
// family loads through the official init_model / init_opt / load_checkpoint without the loader's silent
// fallback (random weights at epoch 0), and its target encoder reproduces ours; a file outside the family
// (the shipped quick preset) is refused with the conditions it fails.
//
// Needs /usr/bin/python3 with torch and a checkout of facebookresearch/ijepa (checked at 52c1ae9) named by
// IJEPA_OFFICIAL (nothing of it is vendored here); without either, the tests are ignored and say why.
import * as tf from "@tensorflow/tfjs";
import { assert, assertEquals } from "../_assert.ts";
import { setBackend } from "../../lib/engine/backend.ts";
import { torchAvailable } from "../../lib/eval/bench_torch.ts";
import { IJEPA } from "../../lib/model/ijepa.ts";
import { saveModel } from "../../lib/io/weights.ts";

const PYTHON = "/usr/bin/python3";
const ROOT = new URL("../../", import.meta.url).pathname;
const SCRIPT = `${ROOT}tests/reference/to_official.py`;
const QUICK = `${ROOT}data/pretrained/quick.safetensors`;

async function officialCheckout(): Promise<{ dir?: string; why?: string }> {
  const dir = Deno.env.get("IJEPA_OFFICIAL");
  if (!dir) return { why: "set IJEPA_OFFICIAL to a facebookresearch/ijepa checkout" };
  try {
    await Deno.stat(`${dir}/src/helper.py`);
    return { dir };
  } catch {
    return { why: `IJEPA_OFFICIAL=${dir} has no src/helper.py (not a facebookresearch/ijepa checkout)` };
  }
}

const TORCH = await torchAvailable(PYTHON);
const OFFICIAL = await officialCheckout();
const SKIP = TORCH ?? OFFICIAL.why;
const ignored = SKIP ? ` (ignored: ${SKIP})` : "";

async function python(args: string[], extraPath = ""): Promise<{ code: number; out: string }> {
  const r = await new Deno.Command(PYTHON, {
    args,
    cwd: OFFICIAL.dir,
    env: { PYTHONPATH: `${OFFICIAL.dir}${extraPath}`, OMP_NUM_THREADS: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: r.code, out: dec.decode(r.stdout) + dec.decode(r.stderr) };
}

/** `  key: value` lines of the script's yaml advice. */
function yamlValues(out: string): Record<string, string> {
  const v: Record<string, string> = {};
  for (const m of out.matchAll(/^ {2}((?:meta|mask|data)\.\w+): (\S+)/gm)) v[m[1]] = m[2];
  return v;
}

// The official train.py's loading path, step by step, on the checkpoint the script wrote: init_model with the
// config values the script printed, target = deepcopy(encoder), init_opt with use_bfloat16 (as every official
// config), load_checkpoint. Two stand-ins: DistributedDataParallel needs a process group, so a wrapper with the
// same `module.` key prefix stands in for it; and GradScaler disables itself without CUDA (its load_state_dict
// is then a no-op that would accept anything), so CUDA amp is declared available before init_opt builds it,
// making it the enabled scaler a GPU run gets (its __init__ and load_state_dict touch no CUDA tensor).
const LOAD_PY = `
import copy, json, logging, sys
import torch
import torch.cuda.amp.grad_scaler as gs
from src.helper import init_model, init_opt, load_checkpoint
from to_official import read_safetensors

spec = json.load(open(sys.argv[1]))
torch.set_num_threads(1)
logs = []
class Keep(logging.Handler):
    def emit(self, record):
        logs.append(record.getMessage())
logging.getLogger().addHandler(Keep())

class ModulePrefix(torch.nn.Module):  # DDP's state_dict keys: "module." + the wrapped module's
    def __init__(self, m):
        super().__init__()
        self.module = m

y = spec["yaml"]
encoder, predictor = init_model(device=torch.device("cpu"), patch_size=int(y["mask.patch_size"]),
    model_name=y["meta.model_name"], crop_size=int(y["data.crop_size"]), pred_depth=int(y["meta.pred_depth"]),
    pred_emb_dim=int(y["meta.pred_emb_dim"]))
target = copy.deepcopy(encoder)
gs.amp_definitely_not_available = lambda: False
optimizer, scaler, _, _ = init_opt(encoder=encoder, predictor=predictor, iterations_per_epoch=1, start_lr=2e-4,
    ref_lr=1e-3, warmup=1, num_epochs=2, wd=0.04, final_wd=0.4, final_lr=1e-6, use_bfloat16=True, ipe_scale=1.0)
assert scaler is not None and scaler._enabled, "GradScaler is not enabled"
wrapped = [ModulePrefix(m) for m in (encoder, predictor, target)]
_, _, _, optimizer, scaler, epoch = load_checkpoint(device=torch.device("cpu"), r_path=y["meta.read_checkpoint"],
    encoder=wrapped[0], predictor=wrapped[1], target_encoder=wrapped[2], opt=optimizer, scaler=scaler)
written = torch.load(y["meta.read_checkpoint"], map_location="cpu")

ours, _ = read_safetensors(spec["weights"])
differ = [k for part, m in (("encoder", encoder), ("predictor", predictor), ("target_encoder", target))
          for k, v in m.state_dict().items() if not torch.equal(v, ours[part + "." + k].float())]
x = torch.tensor(spec["input"], dtype=torch.float32).reshape(spec["shape"])
target.eval()
with torch.no_grad():
    h = target(x)
print("RESULT " + json.dumps({
    "epoch": epoch, "written_epoch": written["epoch"], "logs": logs, "differ": differ,
    "tensors": sum(len(m.state_dict()) for m in (encoder, predictor, target)), "file_tensors": len(ours),
    "file_trained": sum(k.startswith(("encoder.", "predictor.")) for k in ours),
    "scaler": scaler.state_dict(), "groups": [len(g["params"]) for g in optimizer.param_groups],
    "target_shape": list(h.shape), "target": h.flatten().tolist()}))
`;

// A file of ours in the official family: vit_tiny's encoder (3 channels, 192 wide, 12 blocks, 3 heads, MLP
// 768) on 32px images with patch 16 (4 tokens, to stay fast), a small predictor with the encoder's heads.
const FAMILY = {
  imageSize: 32,
  patchSize: 16,
  channels: 3,
  width: 192,
  depth: 12,
  heads: 3,
  mlpHidden: 768,
  predictorWidth: 48,
  predictorDepth: 2,
  predictorHeads: 3,
};

Deno.test({
  name:
    `to_official.py: a vit_tiny-shaped file loads through the official init_model/init_opt/load_checkpoint${ignored}`,
  ignore: SKIP !== undefined,
  async fn() {
    await setBackend("cpu", { quiet: true, blas: false });
    const dir = await Deno.makeTempDir({ prefix: "to_official_" });
    const model = new IJEPA("quick", { seed: 11, overrides: FAMILY });
    const other = new IJEPA("quick", { seed: 12, overrides: FAMILY, parts: ["encoder"] });
    try {
      // A target encoder that is not the encoder's copy, so a mixed-up part shows.
      for (const [name, v] of other.encoder.params.vars) model.targetEncoder.params.get(name).assign(v);
      const weights = `${dir}/family.safetensors`;
      await saveModel(model, weights, { preset: "quick", step: 7 });

      const ckpt = `${dir}/family.pth.tar`;
      const conv = await python([SCRIPT, weights, ckpt]);
      assertEquals(conv.code, 0, conv.out);
      assert(!conv.out.includes("NOT in the official family"), conv.out);
      assertEquals((conv.out.match(/<All keys matched successfully>/g) ?? []).length, 3, conv.out);
      const yaml = yamlValues(conv.out);
      assertEquals(yaml, {
        "meta.model_name": "vit_tiny",
        "meta.pred_depth": "2",
        "meta.pred_emb_dim": "48",
        "mask.patch_size": "16",
        "data.crop_size": "32",
        "meta.read_checkpoint": ckpt,
        "meta.load_checkpoint": "true",
      }, conv.out);

      // The same fixed input for both: NCHW for PyTorch, NHWC for us.
      const shape = [2, 3, 32, 32];
      const input = Array.from(
        { length: 2 * 3 * 32 * 32 },
        (_, i) => Math.sin(0.37 * i) * Math.cos(0.011 * i),
      );
      const spec = `${dir}/spec.json`;
      await Deno.writeTextFile(spec, JSON.stringify({ yaml, weights, input, shape }));
      await Deno.writeTextFile(`${dir}/load.py`, LOAD_PY);
      const run = await python([`${dir}/load.py`, spec], `:${ROOT}tests/reference`);
      assertEquals(run.code, 0, run.out);
      const line = run.out.split("\n").find((l) => l.startsWith("RESULT "));
      assert(line, run.out);
      const r = JSON.parse(line.slice(7));

      // No fallback: nothing raised inside load_checkpoint, every part and the optimizer loaded, epoch as written.
      const fellBack = r.logs.filter((l: string) => l.includes("Encountered exception"));
      assertEquals(fellBack, [], "load_checkpoint fell back to random weights");
      assert(r.logs.some((l: string) => l === "loaded optimizers from epoch 0"), r.logs.join("\n"));
      assertEquals([r.epoch, r.written_epoch], [0, 0]);
      assertEquals(r.scaler, {
        scale: 65536,
        growth_factor: 2,
        backoff_factor: 0.5,
        growth_interval: 2000,
        _growth_tracker: 0,
      });
      // init_opt's 4 groups hold every encoder and predictor parameter
      assertEquals(r.groups.length, 4);
      assertEquals(r.groups.reduce((a: number, b: number) => a + b, 0), r.file_trained);
      // Every official tensor equals the file's.
      assertEquals(r.differ, []);
      assertEquals(r.tensors, r.file_tensors);

      // The official target encoder's output on the fixed input is ours.
      const x = tf.tidy(() =>
        tf.tensor4d(input, shape as [number, number, number, number]).transpose([0, 2, 3, 1])
      );
      const h = model.targetEncoder.forward(x as tf.Tensor4D);
      assertEquals(r.target_shape, h.shape);
      const ours = h.dataSync();
      let diff = 0;
      for (let i = 0; i < ours.length; i++) diff = Math.max(diff, Math.abs(ours[i] - r.target[i]));
      assert(diff < 1e-5, `target encoder: max difference ${diff} from the official code`);
      tf.dispose([x, h]);
    } finally {
      model.dispose();
      other.dispose();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name:
    `to_official.py: the quick preset (1 channel, depth 6) is named outside the official family${ignored}`,
  ignore: SKIP !== undefined,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "to_official_" });
    try {
      const ckpt = `${dir}/quick.pth.tar`;
      const r = await python([SCRIPT, QUICK, ckpt]);
      assertEquals(r.code, 0, r.out);
      await Deno.stat(ckpt); // still written
      assert(r.out.includes("NOT in the official family"), r.out);
      assert(r.out.includes("  - channels 1 (every official model takes 3)"), r.out);
      assert(r.out.includes("  - depth 6 (official vit_tiny, width 192: depth 12)"), r.out);
      assertEquals(r.out.match(/^ {2}- /gm)?.length, 2, r.out); // nothing else fails
      assert(r.out.includes("RANDOM weights at epoch 0"), r.out);
      assert(
        r.out.includes(
          "encoder = vit.VisionTransformer(img_size=[28], patch_size=4, in_chans=1, embed_dim=192, depth=6, " +
            "num_heads=3, mlp_ratio=4.0, qkv_bias=True, norm_layer=partial(torch.nn.LayerNorm, eps=1e-06))",
        ),
        r.out,
      );
      assert(r.out.includes("predictor_embed_dim=96, depth=4, num_heads=3"), r.out);
      assert(!/meta\.model_name: /.test(r.out), r.out);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
