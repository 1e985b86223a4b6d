"""Write ``notebooks/*.ipynb`` (outputs stripped) from the cell lists below.

    python tools/build_notebooks.py

The notebooks are the product; this file is how they stay reviewable as plain text. Every cell runs the real
modules of ``hyperseg_lite`` on the embedded checkpoint; ``tests/test_notebooks.py`` executes them all.
"""

from __future__ import annotations

from pathlib import Path

import nbformat

OUT = Path(__file__).resolve().parent.parent / "notebooks"

SETUP = """\
import numpy as np
import torch
import matplotlib.pyplot as plt

from hyperseg_lite import load_model
from hyperseg_lite.data.world import World

torch.manual_seed(0)
loaded = load_model()  # the embedded checkpoint in assets/hyperseg-lite, no network
model, processor, tokenizer = loaded.model.eval(), loaded.processor, loaded.tokenizer
print(loaded.describe())
world = World("test", seed=0, image_size=model.config.image_size)"""

NOTEBOOKS: dict[str, list[str]] = {}

NOTEBOOKS["01_prompt_design"] = [
    """md:# 1. Prompt design: one template family per task

HyperSeg (arXiv 2411.17606, Sec. 3.2) asks every task through the LLM with one of three prompt families:

| family | what the user gives | where it enters the prompt |
|---|---|---|
| **text** (referring, reasoning) | an expression or a question | `<refer>` span, followed by `[SEG]` |
| **class** (semantic, instance, panoptic, video instance) | a list of class names | one `<cls>` span per name, each closed by `[SEG]` |
| **visual** (clicks, boxes, scribbles, masks) | regions | one `<region>` embedding per region |

Every prompt also carries the image: `<image>` (global SigLIP tokens), `<temporal>` (the Fine-grained Visual
Perceiver's tokens) and the mask-query tokens the LLM reads and writes.""",
    SETUP,
    """md:## The exact templates

`hyperseg_lite.prompts` renders the strings the released code tokenizes (`conv_phi_v0`, with the release's own
spelling, e.g. *"Please doing Referring Segmentation"*). The `lite` model uses the `compact` style: the same turn
without the 155-character system prompt, a third of every prompt for a byte-level tokenizer
(`config.conversation_style`).""",
    """from hyperseg_lite import prompts as P
from hyperseg_lite import constants

for name, conversation in [("referring", P.referring_prompt("referring")),
                           ("reasoning + explanation", P.referring_prompt("reasoning_explain", explanation="because ...")),
                           ("panoptic, 3 classes", P.class_prompt(3, "panoptic")),
                           ("visual, 2 regions", P.region_prompt(2))]:
    print(f"--- {name} (release style)\\n{conversation.render()}\\n")
print("special tokens:", constants.SEG_TOKEN, constants.REFER_TOKEN, constants.CLS_TOKEN, constants.REGION_TOKEN,
      constants.IMAGE_TOKEN)
print("lite renders:", model.config.conversation_style)""",
    """md:## From a prompt to the LLM's input

`HyperSegProcessor.encode` tokenizes the text and expands each placeholder into the positions the model fills:
negative ids mark where image tokens, perceiver tokens, mask queries and regions go; `class_spans` and
`refer_mask` mark the tokens whose hidden states become class and expression embeddings (Hybrid Entity
Recognition).""",
    """sample = world.sample("referring", 0)
encoded = processor.encode(P.referring_prompt("referring"), expression=sample.expression)
ids = encoded.input_ids.tolist()
kinds = {v: k for k, v in vars(constants).items() if k.endswith("_INDEX") and isinstance(v, int)}
runs, start = [], 0
for i in range(1, len(ids) + 1):  # group consecutive positions of one kind
    if i == len(ids) or (ids[i] < 0) != (ids[start] < 0) or (ids[i] < 0 and ids[i] != ids[start]):
        piece = ids[start:i]
        label = kinds.get(piece[0], "?") if piece[0] < 0 else repr(tokenizer.decode(piece))
        runs.append((start, i - start, label))
        start = i
for begin, length, label in runs:
    print(f"{begin:4d} +{length:3d}  {label[:90]}")
print("expression:", sample.expression, "| tokens in the refer span:", int(encoded.refer_mask.sum()))""",
    """fig, ax = plt.subplots(figsize=(12, 1.6))
codes = np.array([0 if i >= 0 else -i for i in ids])
ax.imshow(codes[None], aspect="auto", cmap="tab10", interpolation="nearest")
ax.imshow(np.ma.masked_where(~encoded.refer_mask.numpy()[None], np.ones((1, len(ids)))), aspect="auto", cmap="autumn",
          alpha=0.6)
ax.set_yticks([]); ax.set_xlabel("position (colour = text / image / perceiver / query placeholder; orange = expression)")
ax.set_title(f"{len(ids)} positions for one referring prompt")
plt.show()""",
]

NOTEBOOKS["02_vision_side"] = [
    """md:# 2. The vision side: global tokens, the pyramid, and the Fine-grained Visual Perceiver

Two vision paths feed the LLM (paper Sec. 3.3): a **global** encoder (SigLIP) whose tokens describe the scene,
and a **pyramid** encoder (Swin) whose multi-scale features the **FVP** compresses into a fixed number of
fine-grained tokens: learnable latents cross-attend to one pyramid scale per layer,
`P_j = P_{j-1} + CrossAttn(P_{j-1}, F_j)` (Eq. 2). The paper adds a conditional weight gate
`P_j = P_{j-1} + tanh(W_j(CrossAttn)) * CrossAttn` (Eq. 3); the released checkpoint does not use it, so it is a
config switch here (`perceiver_config.conditional_gate`).""",
    SETUP,
    """sample = world.sample("referring", 3)
prepared = processor.prepare_image(torch.from_numpy(sample.image))
pixel_values, global_values = prepared.pixel_values[None], prepared.global_pixel_values[None]
with torch.no_grad():
    pyramid = model.pyramid(pixel_values)
    features = model.encode_images(pixel_values, global_values, return_attention=True)
print("pyramid:", [tuple(f.shape) for f in pyramid])
print("global tokens:", tuple(features.global_tokens.shape), "| FVP tokens:", tuple(features.fvp_tokens.shape))
fig, axes = plt.subplots(1, len(pyramid) + 1, figsize=(15, 3))
axes[0].imshow(sample.image); axes[0].set_title("input")
for ax, f in zip(axes[1:], pyramid):
    ax.imshow(f[0].norm(dim=0).numpy(), cmap="magma"); ax.set_title(f"stride {256 // f.shape[-1]}: |feature|")
for ax in axes: ax.axis("off")
plt.show()""",
    """md:## Where the perceiver looks

Each layer's cross-attention maps every latent over one pyramid scale. Averaged over heads, a few latents lock
onto individual objects.""",
    """maps = features.perceiver_attention  # per layer: (batch, heads, latents, positions)
fig, axes = plt.subplots(len(maps), 6, figsize=(13, 2.2 * len(maps)))
for row, attention in enumerate(maps):
    weights = attention[0].mean(0)  # (latents, pixels + latents): Flamingo-style, latents attend to themselves too
    weights = weights[:, : weights.shape[-1] - weights.shape[0]]  # keep the pixels of this scale
    side = int(weights.shape[-1] ** 0.5)
    picked = weights.max(-1).values.argsort(descending=True)[:6]  # the most focused latents
    for col, latent in enumerate(picked):
        axes[row, col].imshow(sample.image)
        heat = torch.nn.functional.interpolate(weights[latent].reshape(1, 1, side, side), size=sample.image.shape[:2],
                                               mode="bilinear")[0, 0]
        axes[row, col].imshow(heat.numpy(), alpha=0.6, cmap="jet")
        axes[row, col].set_title(f"layer {row}, latent {int(latent)}", fontsize=8); axes[row, col].axis("off")
plt.tight_layout(); plt.show()""",
    """md:## With and without the conditional gate

A perceiver built with `conditional_gate=True` has one gate per layer (initialised so `tanh` starts near 1, not
0). Loading the trained weights into it and comparing the tokens shows how much the gate changes.""",
    """from hyperseg_lite.modeling.perceiver import FineGrainedVisualPerceiver

per = model.config.perceiver_config
gated = FineGrainedVisualPerceiver(model.pyramid.channels, per.num_latents, per.hidden_size, per.num_layers,
                                   per.num_heads, per.head_dim, per.ff_mult, model.config.llm_hidden_size,
                                   list(per.pyramid_levels), conditional_gate=True)
missing, unexpected = gated.load_state_dict(model.perceiver.state_dict(), strict=False)
print("new parameters (the gates):", missing)
with torch.no_grad():
    plain_tokens, _ = model.perceiver(pyramid)
    gated_tokens, _ = gated(pyramid)
cos = torch.nn.functional.cosine_similarity(plain_tokens[0], gated_tokens[0], dim=-1)
plt.bar(range(len(cos)), cos.numpy()); plt.ylim(0, 1.05)
plt.xlabel("latent"); plt.ylabel("cosine(plain, gated)"); plt.title("FVP tokens with an untrained gate")
plt.show()""",
]

NOTEBOOKS["03_llm_and_entity_recognition"] = [
    """md:# 3. The LLM and Hybrid Entity Recognition

After the LLM, HyperSeg reads prompts back from hidden states (paper Sec. 3.4): mask tokens give the mask
queries, and each **class span** (class name + `[SEG]`) or the **referring span** is mean-pooled into a prompt
embedding. The predictor scores every mask query against every prompt embedding: this score matrix is how the
model says which masks answer which class, and that a class is absent (a low score everywhere).""",
    SETUP,
    """from hyperseg_lite import prompts as P

sample = world.sample("panoptic", 2)
names = sample.class_names
present = {names[k] for k in sample.labels}
encoded = processor.encode(P.class_prompt(len(names), "panoptic"), class_names=names)
batch = processor.collate([encoded])
prepared = processor.prepare_image(torch.from_numpy(sample.image))
with torch.no_grad():
    features = model.encode_images(prepared.pixel_values[None], prepared.global_pixel_values[None])
    out, hidden = model.segment(features, batch["input_ids"], batch["attention_mask"], batch["class_spans"],
                                batch["refer_mask"])
print("hidden states:", tuple(hidden.shape), "| score matrix (batch, queries, classes):", tuple(out.prompt_logits.shape))
spans = batch["class_spans"][0]
for k, name in enumerate(names):
    tokens = (spans == k + 1).nonzero().flatten().tolist()
    print(f"class {k}: {name!r:12} positions {tokens[0]}..{tokens[-1]} ({len(tokens)} tokens incl. [SEG])",
          "present" if name in present else "absent")""",
    """scores = out.prompt_logits[0].sigmoid().numpy()
fig, (a, b) = plt.subplots(1, 2, figsize=(13, 4.5), gridspec_kw={"width_ratios": [1, 2]})
a.imshow(sample.image); a.axis("off"); a.set_title("image")
im = b.imshow(scores.T, cmap="viridis", vmin=0, vmax=1, aspect="auto")
b.set_yticks(range(len(names)), [f"{n} ({'present' if n in present else 'absent'})" for n in names])
b.set_xlabel("mask query"); b.set_title("sigmoid(score): query x class"); plt.colorbar(im)
plt.tight_layout(); plt.show()
for k, name in enumerate(names):
    print(f"{name:10s} best query score {scores[:, k].max():.2f}  ({'present' if name in present else 'absent'})")""",
    """md:Absent classes score low everywhere because training pairs every class list with present *and* absent names
and pushes the scores of unmatched queries and absent classes to 0 (sigmoid focal-free BCE on the score matrix,
`loss_cls`). The referring path is the same with one column: the expression.""",
    """from hyperseg_lite.pipeline import HyperSegPipeline

pipe = HyperSegPipeline(loaded)
referring = world.sample("referring", 5)
result = pipe.refer(referring.image, referring.expression)
print("expression:", referring.expression, "| no match" if result.no_match else f"| score {result.scores[0]:.2f}")
plt.imshow(result.overlay(referring.image)); plt.axis("off"); plt.show()""",
]

NOTEBOOKS["04_segmentation_predictor"] = [
    """md:# 4. The segmentation predictor: pixel decoder and masked attention

HyperSeg's predictor is Mask2Former's (paper Sec. 3.4): a multi-scale deformable-attention **pixel decoder**
turns the Swin pyramid into per-pixel mask features plus three scales, and a **masked-attention decoder**
refines the LLM's mask queries layer by layer, each layer attending only inside the previous layer's mask.""",
    SETUP,
    """from hyperseg_lite import prompts as P

sample = world.sample("referring", 7)
encoded = processor.encode(P.referring_prompt("referring"), expression=sample.expression)
batch = processor.collate([encoded])
prepared = processor.prepare_image(torch.from_numpy(sample.image))
with torch.no_grad():
    features = model.encode_images(prepared.pixel_values[None], prepared.global_pixel_values[None])
    out, _ = model.segment(features, batch["input_ids"], batch["attention_mask"], batch["class_spans"],
                           batch["refer_mask"], return_intermediate_masks=True)
print("mask features:", tuple(features.mask_features.shape))
print("decoder scales:", [tuple(f.shape) for f in features.multi_scale_features])
fig, axes = plt.subplots(1, 4, figsize=(14, 3.2))
axes[0].imshow(features.mask_features[0].norm(dim=0).numpy(), cmap="magma"); axes[0].set_title("mask features (1/4)")
for ax, f in zip(axes[1:], features.multi_scale_features):
    ax.imshow(f[0].norm(dim=0).numpy(), cmap="magma"); ax.set_title(f"scale {tuple(f.shape[-2:])}")
for ax in axes: ax.axis("off")
plt.show()""",
    """scores = out.prompt_logits[0, :, 0].sigmoid()
best = int(scores.argmax())
layers = out.intermediate_masks  # one prediction before the first layer and one after each layer
fig, axes = plt.subplots(1, len(layers) + 1, figsize=(2.2 * (len(layers) + 1), 2.6))
axes[0].imshow(sample.image); axes[0].set_title(sample.expression[:28], fontsize=8)
for i, (ax, masks) in enumerate(zip(axes[1:], layers)):
    ax.imshow(masks[0, best].sigmoid().numpy(), cmap="gray", vmin=0, vmax=1); ax.set_title(f"layer {i}", fontsize=8)
for ax in axes: ax.axis("off")
plt.suptitle(f"query {best} refined through the decoder (score {scores[best]:.2f})"); plt.show()""",
    """order = scores.argsort(descending=True)[:6]
fig, axes = plt.subplots(1, 6, figsize=(14, 2.6))
for ax, q in zip(axes, order):
    ax.imshow(sample.image); ax.imshow(out.pred_masks[0, q].sigmoid().numpy() > 0.5, alpha=0.5,
                                       extent=(0, 256, 256, 0), cmap="Reds")
    ax.set_title(f"query {int(q)}: {scores[q]:.2f}", fontsize=9); ax.axis("off")
plt.suptitle("final masks, ranked by score against the expression"); plt.show()""",
]

NOTEBOOKS["05_visual_prompts"] = [
    """md:# 5. Visual prompts: clicks, boxes, scribbles, masks

A visual prompt is rendered as a mask on the image (clicks and scribbles as discs, radius 10 px at 1024 px,
as the paper's data pipeline does), then **pooled** from the global vision tokens into one `<region>`
embedding the LLM reads (paper Sec. 3.2). The pipeline accepts positive and negative clicks; negative clicks
rule out masks that cover them.""",
    SETUP,
    """from hyperseg_lite.pipeline import HyperSegPipeline, Region
from hyperseg_lite.visual_prompts import box_mask, disc_mask, scaled_radius, scribble_mask

pipe = HyperSegPipeline(loaded)
sample = world.sample("interactive", 1)
target = sample.masks[0]
ys, xs = np.nonzero(target)
click = [float(np.median(xs)), float(np.median(ys))]
box = [float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)]
scribble = [[float(xs[i]), float(ys[i])] for i in np.linspace(0, len(xs) - 1, 4).astype(int)]
size = sample.image.shape[:2]
radius = scaled_radius(model.config.point_radius, size, model.config.region_reference_size)
rendered = {"click": disc_mask(size, [click], radius), "box": box_mask(size, box),
            "scribble": scribble_mask(size, scribble, radius), "mask": target}
fig, axes = plt.subplots(1, 4, figsize=(13, 3.2))
for ax, (name, mask) in zip(axes, rendered.items()):
    ax.imshow(sample.image); ax.imshow(mask, alpha=0.5, cmap="Blues"); ax.set_title(f"{name} as rendered"); ax.axis("off")
plt.show()""",
    """from hyperseg_lite.evaluation import jaccard

regions = {"click": Region(points=[click]), "box": Region(box=box), "scribble": Region(scribble=scribble),
           "mask": Region(mask=target)}
fig, axes = plt.subplots(1, 4, figsize=(13, 3.2))
for ax, (name, region) in zip(axes, regions.items()):
    result = pipe.interactive(sample.image, region)
    ax.imshow(result.overlay(sample.image)); ax.axis("off")
    ax.set_title(f"{name}: IoU {jaccard(result.masks[0], target):.2f}")
plt.show()""",
    """md:## Refining with clicks

Interactive use adds clicks one at a time: a positive click inside what was missed, a negative click on what
should not be there. Each step is one `interactive` call with all clicks so far.""",
    """clicks, labels = [click], [1]
history = []
for step in range(3):
    result = pipe.interactive(sample.image, Region(points=clicks, point_labels=labels))
    pred = result.masks[0]
    history.append((result, list(zip(clicks, labels)), jaccard(pred, target)))
    missed, extra = target & ~pred, pred & ~target
    wrong = missed if missed.sum() >= extra.sum() else extra
    if not wrong.any():
        break
    wy, wx = np.nonzero(wrong)
    k = len(wy) // 2
    clicks.append([float(wx[k]), float(wy[k])]); labels.append(1 if wrong is missed else 0)
fig, axes = plt.subplots(1, len(history), figsize=(4 * len(history), 3.5))
for ax, (result, pts, iou) in zip(np.atleast_1d(axes), history):
    ax.imshow(result.overlay(sample.image))
    for (x, y), positive in pts:
        ax.scatter([x], [y], c="lime" if positive else "red", s=60, edgecolors="black")
    ax.set_title(f"{len(pts)} click(s): IoU {iou:.2f}"); ax.axis("off")
plt.show()""",
]

NOTEBOOKS["06_temporal_adapter"] = [
    """md:# 6. The temporal adapter: video from an image model

HyperSeg handles video with two additions (paper Sec. 3.5):

* **global prompt aggregation**: the prompt embeddings used at frame t are the mean over frames 1..t, so the
  text or class prompt drifts less;
* **local space-time injection**: the perceiver's output tokens of frame t-1 (read back from the LLM) seed the
  perceiver's latents at frame t.

Both are config switches. Here one clip is tracked four ways from the same first-frame mask.""",
    SETUP,
    """from hyperseg_lite.evaluation import jaccard
from hyperseg_lite.pipeline import HyperSegPipeline, Region

clip_world = World("test", seed=0, image_size=model.config.image_size, clip_length=(8, 8))
clip = clip_world.sample("vos", 0)
first = clip.frame_masks[0]
pipe = HyperSegPipeline(loaded)
curves, masks = {}, {}
for aggregation in (True, False):
    for injection in (True, False):
        model.config.global_prompt_aggregation, model.config.local_space_time_injection = aggregation, injection
        results = pipe.track(clip.frames, [Region(mask=m) for m in first])
        curves[(aggregation, injection)] = [np.mean([jaccard(r.masks[k], gt[k]) for k in range(len(first))])
                                            for r, gt in zip(results, clip.frame_masks)]
        masks[(aggregation, injection)] = [r.masks for r in results]
        if aggregation and injection:
            full = results
model.config.global_prompt_aggregation = model.config.local_space_time_injection = True
fig, (a, b) = plt.subplots(1, 2, figsize=(13, 4))
for key, curve in curves.items():
    label = f"aggregation={key[0]}, injection={key[1]}"
    a.plot(curve, marker="o", label=f"{label} (mean J {np.mean(curve[1:]):.3f})")
    changed = [int((m ^ ref).sum()) for m, ref in zip(masks[key], masks[(True, True)])]
    b.plot(changed, marker="o", label=label)
a.set_xlabel("frame"); a.set_ylabel("mean J over objects"); a.set_ylim(0, 1.02); a.legend(fontsize=8)
b.set_xlabel("frame"); b.set_ylabel("pixels that differ from both-on"); b.legend(fontsize=8)
plt.show()""",
    """md:How much the switches matter depends on the model: the embedded `lite` model was trained on 2-frame clips
(`--clip-frames 2`), so it leans on the first-frame prompt and the switches move few pixels; the released 3B
model was trained on longer clips. Either way the comparison above is the experiment to run on your own
checkpoint.""",
    """fig, axes = plt.subplots(2, 6, figsize=(15, 5))
for ax, t in zip(axes[0], np.linspace(0, len(clip.frames) - 1, 6).astype(int)):
    ax.imshow(full[t].overlay(clip.frames[t], legend=False)); ax.set_title(f"frame {t}"); ax.axis("off")
for ax, t in zip(axes[1], np.linspace(0, len(clip.frames) - 1, 6).astype(int)):
    ax.imshow(clip.frames[t]); ax.imshow(clip.frame_masks[t].any(0), alpha=0.4, cmap="Greens"); ax.axis("off")
axes[0, 0].set_ylabel("tracked"); axes[1, 0].set_ylabel("ground truth")
plt.suptitle("tracking with both switches on (top) vs ground truth (bottom)"); plt.show()""",
]

NOTEBOOKS["07_training"] = [
    """md:# 7. Training: the world, the losses, a model learning

The embedded model was trained from scratch on `hyperseg_lite.data.World`, a procedural world with exact ground
truth for every task (see the model card in `assets/hyperseg-lite/README.md` and
`python -m hyperseg_lite.train --help`). Here we generate samples, then train a small model for about a minute
on one fixed batch (the classic "can it overfit?" check) with a live loss curve, and compare its masks before
and after.""",
    """import numpy as np
import torch
import matplotlib.pyplot as plt
from IPython.display import clear_output

from hyperseg_lite import build_random_model
from hyperseg_lite.data.world import TASKS, World

world = World("train", seed=0, image_size=64)  # the tiny model's input size
fig, axes = plt.subplots(2, 3, figsize=(12, 8))
for ax, task in zip(axes.flat, ["panoptic", "referring", "reasoning", "interactive", "semantic", "instance"]):
    sample = world.sample(task, 0)
    ax.imshow(sample.image); ax.axis("off")
    if len(sample.masks):
        ax.imshow(sample.masks.any(0), alpha=0.35, cmap="spring")
    text = sample.expression or ", ".join(sample.class_names or []) or f"{len(sample.regions)} visual prompt(s)"
    ax.set_title(f"{task}: {text}"[:60], fontsize=8)
plt.tight_layout(); plt.show()
print("tasks:", TASKS)""",
    """from hyperseg_lite.train import training_step
from hyperseg_lite.training.batching import collate, sample_items

torch.manual_seed(0)
loaded = build_random_model("tiny", seed=0)
model = loaded.model.train()
samples = [world.sample("referring", i) for i in range(2)]
batch = collate([sample_items(s, loaded.processor, 0) for s in samples], loaded.processor)


def predicted_masks():
    with torch.no_grad():
        out = model.eval()(**{k: v for k, v in batch.items() if k != "targets"})
    model.train()
    best = out.prompt_logits[:, :, 0].argmax(1)
    return [out.pred_masks[i, best[i]].sigmoid().numpy() for i in range(len(samples))]


before = predicted_masks()
optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3)
losses = []
for step in range(120):
    loss, parts = training_step(loaded, samples, "cpu")
    optimizer.zero_grad(); loss.backward(); optimizer.step()
    losses.append(loss.item())
    if step % 20 == 19:
        clear_output(wait=True)
        plt.figure(figsize=(6, 3)); plt.plot(losses); plt.yscale("log"); plt.xlabel("step"); plt.ylabel("loss")
        plt.title(f"step {step + 1}: loss {losses[-1]:.2f}"); plt.show()
print(f"loss {losses[0]:.2f} -> {losses[-1]:.2f}")""",
    """after = predicted_masks()
fig, axes = plt.subplots(len(samples), 3, figsize=(9, 3 * len(samples)))
for row, sample in enumerate(samples):
    axes[row, 0].imshow(sample.image); axes[row, 0].set_title(sample.expression[:40], fontsize=8)
    axes[row, 1].imshow(before[row], cmap="gray", vmin=0, vmax=1); axes[row, 1].set_title("before")
    axes[row, 2].imshow(after[row], cmap="gray", vmin=0, vmax=1); axes[row, 2].set_title("after 120 steps")
for ax in axes.flat: ax.axis("off")
plt.tight_layout(); plt.show()""",
    """md:To retrain the embedded model itself, run (times and settings in the model card):

```bash
python -m hyperseg_lite.train --preset lite --steps 3600 --batch-size 4 --lr 4e-4 --warmup 200 --output runs/lite
python -m hyperseg_lite.train --init runs/lite/checkpoint --seed 1 --steps 2400 --batch-size 4 --lr 3e-4 --warmup 100 --output runs/lite2
accelerate launch -m hyperseg_lite.train --preset lite ...   # same script on one or several GPUs
```""",
]

NOTEBOOKS["08_evaluation"] = [
    """md:# 8. Evaluation: every metric, per task, and where the model fails

`python -m hyperseg_lite.evaluate` generates a split of the world from a seed and runs every task through the
pipeline with the paper's metrics: cIoU / gIoU and no-target accuracy (gRefCOCO), mIoU, PQ (torchmetrics),
mask AP (pycocotools), click / box mIoU, J&F (DAVIS) and YouTube-VIS AP. The model card's numbers use 100 samples
per image task and 20 clips per video task; this notebook uses fewer so it runs in a couple of minutes.""",
    SETUP,
    """from hyperseg_lite.evaluate import HEADLINE, run, table
from hyperseg_lite.loading import EMBEDDED_CHECKPOINT

report = run(EMBEDDED_CHECKPOINT, split="test", seed=1, samples=12, video_samples=2, clip_length=(8, 8))
print(table(report))
tasks = list(report["tasks"])
values = [report["tasks"][t][HEADLINE[t]] for t in tasks]
plt.figure(figsize=(10, 3)); plt.bar(tasks, values); plt.ylim(0, 1); plt.xticks(rotation=30)
plt.title("test split, seed 1 (small sample)"); plt.show()""",
    """md:## Failure cases

The referring samples with the lowest IoU, with the expression, the ground truth (green) and the prediction
(red).""",
    """from hyperseg_lite.evaluation import jaccard
from hyperseg_lite.pipeline import HyperSegPipeline

pipe = HyperSegPipeline(loaded)
scored = []
for index in range(16):
    sample = world.sample("referring", index)
    result = pipe.refer(sample.image, sample.expression)
    pred = result.union() if len(result) else np.zeros(sample.image.shape[:2], bool)
    gt = sample.masks.any(0) if len(sample.masks) else np.zeros(sample.image.shape[:2], bool)
    scored.append((jaccard(pred, gt), sample, pred, gt))
scored.sort(key=lambda item: item[0])
fig, axes = plt.subplots(1, 4, figsize=(15, 4))
for ax, (iou, sample, pred, gt) in zip(axes, scored[:4]):
    ax.imshow(sample.image)
    ax.imshow(np.ma.masked_where(~gt, gt), alpha=0.5, cmap="summer")
    ax.imshow(np.ma.masked_where(~pred, pred), alpha=0.5, cmap="autumn")
    ax.set_title(f"{sample.expression[:34]}\\nIoU {iou:.2f}", fontsize=8); ax.axis("off")
plt.show()""",
]

NOTEBOOKS["09_the_real_model"] = [
    """md:# 9. The real model: HyperSeg-3B

`load_model("weic22/HyperSeg-3B", precision=...)` loads the released checkpoint: it detects the official layout
(`model_type: mipha_phi`), converts it once with the complete name table (`hyperseg_lite/official_names.py`,
`docs/converter.md`) and caches the result. Precisions: `fp32`, `bf16`, `fp16`, `8bit`, `4bit` (NF4 on the LLM
only). The download is about 7 GB and a GPU is needed for interactive speed; the cells below check and say so
instead of failing.""",
    """import torch
from hyperseg_lite import HyperSegConfig, HyperSegForSegmentation

config = HyperSegConfig.from_preset("3b")
with torch.device("meta"):  # shapes only: no memory, no download
    model = HyperSegForSegmentation(config)
total = sum(p.numel() for p in model.parameters())
by_part = {}
for name, p in model.named_parameters():
    by_part[name.split(".")[0]] = by_part.get(name.split(".")[0], 0) + p.numel()
print(f"HyperSeg-3B: {total / 1e9:.2f} B parameters")
for part, count in sorted(by_part.items(), key=lambda kv: -kv[1]):
    print(f"  {part:22s} {count / 1e6:9.1f} M")""",
    """import csv
from pathlib import Path
from hyperseg_lite import official_names

# the released checkpoint's parameter list (names and shapes, shipped with the project's docs)
tsv = Path("../docs/hyperseg3b_official_params.tsv")
names = [row["name"] for row in csv.DictReader(open(tsv), delimiter="\\t")] if tsv.exists() else [
    "model.layers.0.self_attn.q_proj.weight", "expanded_seg_query_project.weight",
    "model.vision_tower.vision_model.head.attention.in_proj_bias"]
dropped = [n for n in names if official_names.drop_reason(n)]
print(f"{len(names)} official names, {len(names) - len(dropped)} mapped, {len(dropped)} dropped with a reason")
for name in ["model.layers.0.self_attn.q_proj.weight", "expanded_seg_query_project.weight",
             "model.vision_tower.vision_model.head.attention.in_proj_bias"]:
    reason = official_names.drop_reason(name)
    print(f"{name}\\n    -> {'dropped: ' + reason if reason else official_names.map_name(name)}")""",
    """import os
from hyperseg_lite.loading import CheckpointNotFound, load_model

if not torch.cuda.is_available():
    print("No CUDA GPU here: HyperSeg-3B in bf16 needs about 9 GB of GPU memory, in 4-bit about 6 GB. "
          "On a GPU machine run:  load_model('weic22/HyperSeg-3B', precision='4bit')")
else:
    try:
        real = load_model("weic22/HyperSeg-3B", precision="4bit")
        print(real.describe())
    except CheckpointNotFound as error:
        print(error)""",
]


def build(name: str, cells: list[str]) -> nbformat.NotebookNode:
    notebook = nbformat.v4.new_notebook()
    notebook.metadata = {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
                         "language_info": {"name": "python"}}
    for source in cells:
        if source.startswith("md:"):
            notebook.cells.append(nbformat.v4.new_markdown_cell(source[3:]))
        else:
            notebook.cells.append(nbformat.v4.new_code_cell(source))
    for index, cell in enumerate(notebook.cells):
        cell["id"] = f"{name[:2]}-{index:02d}"  # stable ids: no churn in git
    return notebook


def main() -> None:
    OUT.mkdir(exist_ok=True)
    for name, cells in NOTEBOOKS.items():
        nbformat.write(build(name, cells), OUT / f"{name}.ipynb")
        print("wrote", OUT / f"{name}.ipynb")


if __name__ == "__main__":
    main()
