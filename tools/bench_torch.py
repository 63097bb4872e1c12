#!/usr/bin/env python3
"""tools/bench_torch.py — the notebook's training step in PyTorch, for a side-by-side
speed table with `wastenet bench` on the same GPU, or on the same CPU (--device cpu,
tools/bench_side_by_side.sh).

Model: timm's `inception_resnet_v2` with random weights (nothing is downloaded), the
notebook's head (global average pooling, Dropout(0.2), Dense(6)), input 320x320,
batch 64. One step = uint8 batch already on the GPU -> random flip + rotation
(reflect padding, bilinear; torch's grid_sample) -> x/127.5 - 1 -> forward ->
cross-entropy on the logits -> backward -> Adam (Keras's defaults: eps 1e-7).

The fine-tune boundary keeps Keras's meaning, mapped onto timm's modules:
  - Keras `base.layers[:N]` frozen: every timm Conv2d is paired with its Keras Conv2D
    by creation order (Keras numbers its auto-named layers conv2d_N in creation
    order; timm registers its modules in the same branch order), every BatchNorm2d
    with the Keras BatchNormalization of its conv; a module is frozen when its Keras
    layer index is below N. Each pair's kernel shape is checked.
  - Keras's BatchNormalization here has no gamma (scale=False): timm's BN weight
    stays at 1 and frozen; only beta (BN bias) trains above the boundary.
  - The backbone is called with training=False in the notebook: every BN runs in
    inference mode (moving statistics), in every phase.
  - "none": the whole backbone frozen (transfer learning), only the head trains;
    "all": nothing frozen.
The trainable backbone parameter count is compared with Keras's own count
(tests/graph/fixtures/irv2_trainable.tsv, written by Keras) and printed; a mismatch
is an error.

Modes (all channels-last, like wastenet's NHWC):
  fp32      strict float32 (TF32 off in cuBLAS and cuDNN)
  tf32      float32 storage, TF32 tensor cores (wastenet's default; GPU only)
  bf16-amp  autocast to bfloat16, float32 master weights (torch.autocast on either device)
Timing: GPU: cudnn.benchmark on, a warm-up, then the median of per-step CUDA-event
times. CPU: the median wall time per step (perf_counter) and the median CPU time of
the process per step (process_time, all threads), after the warm-up; peak memory is
the process's peak RSS (it includes the interpreter and torch itself).

Output: one Markdown table row per mode, with the columns `wastenet bench` prints.
"""
import argparse
import os
import statistics
import sys

NOTEBOOK_STEP_S = 39.0  # the notebook's CPU Keras step at batch 64 (docs/PERF.md)
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def keras_layers(size):
    """Keras's model.layers of InceptionResNetV2 (tests/graph/fixtures, written by Keras)."""
    path = os.path.join(ROOT, "tests", "graph", "fixtures", f"irv2_{size}.tsv")
    if not os.path.exists(path):
        path = os.path.join(ROOT, "tests", "graph", "fixtures", "irv2_320.tsv")
    rows = []
    with open(path) as f:
        for line in f:
            if line.startswith("#") or not line.strip():
                continue
            cols = line.rstrip("\n").split("\t")
            rows.append({"index": int(cols[0]), "name": cols[1], "class": cols[2],
                         "weights": cols[5] if len(cols) > 5 else ""})
    return rows


def keras_trainable_counts():
    path = os.path.join(ROOT, "tests", "graph", "fixtures", "irv2_trainable.tsv")
    counts = {}
    with open(path) as f:
        for line in f:
            if line.startswith("#") or not line.strip():
                continue
            a, b = line.split()[:2]
            counts[int(a)] = int(b)
    return counts


def keras_conv_order(layers):
    """Keras Conv2D layers in creation order, each with its kernel shape and the
    index of its BatchNormalization (or None)."""
    convs, max_auto = [], -1
    by_name = {l["name"]: l for l in layers}
    for l in layers:
        if l["class"] != "Conv2D":
            continue
        name = l["name"]
        if name == "conv2d" or name.startswith("conv2d_"):
            n = 0 if name == "conv2d" else int(name.split("_")[1])
            key = float(n)
            bn = "batch_normalization" + ("" if n == 0 else f"_{n}")
            max_auto = max(max_auto, n)
        else:
            # block35_1_conv, conv_7b: created after the branch convs seen so far
            key = max_auto + 0.5
            bn = name + "_bn"
        kernel = l["weights"].split(";")[0].rsplit(":", 1)[1]
        shape = tuple(int(v) for v in kernel.split(","))
        convs.append((key, l["index"], shape, by_name[bn]["index"] if bn in by_name else None))
    convs.sort(key=lambda c: c[0])
    return [(idx, shape, bn) for _, idx, shape, bn in convs]


def build(torch, timm, args, fine_tune_at):
    model = timm.create_model("inception_resnet_v2", pretrained=False, num_classes=6,
                              drop_rate=0.2)
    nn = torch.nn
    # timm convs in registration order, each with the BN that follows it (BasicConv2d)
    pairs = []
    for _, m in model.named_modules():
        if isinstance(m, nn.Conv2d):
            pairs.append([m, None])
        elif isinstance(m, nn.BatchNorm2d):
            pairs[-1][1] = m
    keras = keras_conv_order(keras_layers(args.image_size))
    if len(pairs) != len(keras):
        sys.exit(f"bench_torch: timm has {len(pairs)} convolutions, Keras {len(keras)}")
    frozen_below = {"none": 10**9, "all": 0}.get(str(fine_tune_at))
    if frozen_below is None:
        frozen_below = int(fine_tune_at)
    for (conv, bn), (k_idx, k_shape, k_bn) in zip(pairs, keras):
        kh, kw, cin, cout = k_shape
        if tuple(conv.weight.shape) != (cout, cin, kh, kw):
            sys.exit(f"bench_torch: conv mapping broke at Keras layer {k_idx}: "
                     f"{tuple(conv.weight.shape)} vs HWIO {k_shape}")
        if (bn is None) != (k_bn is None):
            sys.exit(f"bench_torch: BN mapping broke at Keras layer {k_idx}")
        for p in conv.parameters():
            p.requires_grad_(k_idx >= frozen_below)
        if bn is not None:
            bn.weight.requires_grad_(False)  # Keras: scale=False, no gamma
            bn.bias.requires_grad_(k_bn >= frozen_below)
    head = set(id(p) for p in model.get_classifier().parameters())
    trainable = sum(p.numel() for p in model.parameters()
                    if p.requires_grad and id(p) not in head)
    want = 0 if fine_tune_at == "none" else keras_trainable_counts()[frozen_below]
    if trainable != want:
        sys.exit(f"bench_torch: {trainable} trainable backbone parameters, Keras has {want} "
                 f"at fine-tune-at {fine_tune_at}")
    return model, trainable


def set_bn_inference(torch, model):
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.eval()


def augment(torch, F, images, generator):
    """uint8 NHWC on the device -> flipped, rotated (reflect, bilinear), x/127.5 - 1, NCHW
    float in channels-last memory."""
    n, h, w, _ = images.shape
    x = images.permute(0, 3, 1, 2).float()
    flip = torch.rand(n, device=x.device, generator=generator) < 0.5
    x = torch.where(flip[:, None, None, None], x.flip(3), x)
    angle = (torch.rand(n, device=x.device, generator=generator) * 2 - 1) * 0.2 * 2 * 3.141592653589793
    c, s = torch.cos(angle), torch.sin(angle)
    theta = torch.stack([torch.stack([c, -s, torch.zeros_like(c)], 1),
                         torch.stack([s, c, torch.zeros_like(c)], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=True)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=True)
    x = x / 127.5 - 1.0
    return x.contiguous(memory_format=torch.channels_last)


def bench_mode(torch, timm, args, mode):
    F = torch.nn.functional
    cpu = args.device == "cpu"
    if not cpu:
        tf32 = mode != "fp32"
        torch.backends.cuda.matmul.allow_tf32 = tf32
        torch.backends.cudnn.allow_tf32 = tf32
        torch.backends.cudnn.benchmark = True
    dev = torch.device(args.device)
    torch.manual_seed(args.seed)
    model, trainable = build(torch, timm, args, args.fine_tune_at)
    model = model.to(dev).to(memory_format=torch.channels_last)
    model.train()
    set_bn_inference(torch, model)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=args.lr, eps=1e-7)
    gen = torch.Generator(device=dev)
    gen.manual_seed(args.seed)
    images = torch.randint(0, 256, (args.batch, args.image_size, args.image_size, 3),
                           dtype=torch.uint8, device=dev, generator=gen)
    labels = torch.randint(0, 6, (args.batch,), device=dev, generator=gen)

    def step():
        x = augment(torch, F, images, gen)
        with torch.autocast(args.device, dtype=torch.bfloat16, enabled=(mode == "bf16-amp")):
            logits = model(x)
            loss = F.cross_entropy(logits.float(), labels)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss

    if cpu:
        return bench_cpu_steps(torch, args, step, trainable, model, opt)
    torch.cuda.reset_peak_memory_stats()
    for _ in range(args.warmup):
        step()
    torch.cuda.synchronize()
    times = []
    for _ in range(args.steps):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        loss = step()
        b.record()
        b.synchronize()
        times.append(a.elapsed_time(b))
    if not torch.isfinite(loss):
        sys.exit(f"bench_torch: non-finite loss in mode {mode}")
    ms = statistics.median(times)
    peak = torch.cuda.max_memory_allocated() / 2**30
    spread = (min(times), max(times))
    del model, opt
    torch.cuda.empty_cache()
    return ms, peak, spread, trainable


def bench_cpu_steps(torch, args, step, trainable, model, opt):
    """Wall and CPU seconds per step on the CPU: medians after the warm-up."""
    import resource
    import time
    for i in range(args.warmup):
        t0 = time.perf_counter()
        step()
        print(f"  warm-up {i + 1}: {time.perf_counter() - t0:.3f} s", file=sys.stderr, flush=True)
    times, cpu_times = [], []
    for i in range(args.steps):
        t0, c0 = time.perf_counter(), time.process_time()
        loss = step()
        times.append((time.perf_counter() - t0) * 1000.0)
        cpu_times.append(time.process_time() - c0)
        print(f"  step {i + 1}: {times[-1] / 1000.0:.3f} s, CPU {cpu_times[-1]:.2f} s "
              f"(loss {float(loss):.4f})", file=sys.stderr, flush=True)
    if not torch.isfinite(loss):
        sys.exit(f"bench_torch: non-finite loss in mode {args.device}")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1048576.0
    del model, opt
    return statistics.median(times), peak, (min(times), max(times)), trainable, \
        statistics.median(cpu_times)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--image-size", type=int, default=320)
    ap.add_argument("--fine-tune-at", default="500", help="none | all | Keras layer index")
    ap.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    ap.add_argument("--modes", default=None,
                    help="comma-separated; default fp32,tf32,bf16-amp (cuda), fp32,bf16-amp (cpu)")
    ap.add_argument("--steps", type=int, default=50, help="timed steps (median reported)")
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--lr", type=float, default=1e-5)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    try:
        import timm
        import torch
    except ImportError as e:
        sys.exit(f"bench_torch: needs torch and timm ({e})")
    modes = args.modes or ("fp32,bf16-amp" if args.device == "cpu" else "fp32,tf32,bf16-amp")
    if args.device == "cpu":
        if "tf32" in modes.split(","):
            sys.exit("bench_torch: --modes tf32 is a GPU mode (use fp32 or bf16-amp on the CPU)")
        return main_cpu(torch, timm, args, modes)
    if not torch.cuda.is_available():
        print("bench_torch: skipped, no CUDA GPU visible to torch")
        return 77
    print(f"# {torch.cuda.get_device_name()} | torch {torch.__version__} | timm {timm.__version__}"
          f" | cuDNN {torch.backends.cudnn.version()}")
    print("| framework | precision | fine-tune-at | batch | image | median ms/step (min-max) "
          "| images/s | peak GiB | trainable backbone params | vs notebook 39 s/step |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for mode in modes.split(","):
        ms, peak, (lo, hi), trainable = bench_mode(torch, timm, args, mode)
        print(f"| torch+timm eager | {mode} | {args.fine_tune_at} | {args.batch} | "
              f"{args.image_size} | {ms:.1f} ({lo:.1f}-{hi:.1f}) | "
              f"{args.batch * 1000.0 / ms:.0f} | {peak:.2f} | {trainable} | "
              f"{NOTEBOOK_STEP_S * 1000.0 / ms:.0f}x |", flush=True)
    return 0


def main_cpu(torch, timm, args, modes):
    """One line per mode that tools/bench_side_by_side.sh reads:
    RESULT mode median_s min_s max_s cpu_s_per_step peak_rss_gib trainable"""
    print(f"# torch {torch.__version__} | timm {timm.__version__} | CPU threads "
          f"{torch.get_num_threads()} | {torch.backends.cpu.get_cpu_capability()} | oneDNN "
          f"{'on' if torch.backends.mkldnn.is_available() else 'off'}", flush=True)
    for mode in modes.split(","):
        ms, peak, (lo, hi), trainable, cpu_s = bench_mode(torch, timm, args, mode)
        print(f"RESULT {mode} {ms / 1000.0:.3f} {lo / 1000.0:.3f} {hi / 1000.0:.3f} {cpu_s:.2f} "
              f"{peak:.2f} {trainable}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
