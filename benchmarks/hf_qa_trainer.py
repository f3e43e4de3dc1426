"""The Hugging Face side of the quality benchmark and of the training parity test.

Runs in its own environment, never in the project's lock (torch and transformers are not
project dependencies); ``bert_qa_reference.hf_command()`` builds the ``uv run`` line:

    uv run --no-project --with torch==2.13.0 --with "transformers<6" --with safetensors \
        python benchmarks/hf_qa_trainer.py --checkpoint HF_DIR --train train.npz --out OUT ...

It fine-tunes ``transformers.BertForQuestionAnswering`` on windowed features that the caller
made (the same squad_lib features our trainer reads, as ``.npz`` arrays), so that the two
trainers differ in the trainer only: a readable PyTorch loop with the recipe of Hugging Face's
``run_qa.py`` / ``Trainer`` (AdamW with no decay on biases and LayerNorm weights, linear warmup
then linear decay to zero, gradient clipping at global norm 1.0, features reshuffled every
epoch). It writes the loss and learning rate of every step (``log.json``) and, given eval
features, the raw start/end logits per feature (``eval_logits.npz``), which the caller
postprocesses and scores exactly as it does its own; with ``--save-weights``, the trained
parameters (``weights.npz``, which the parity test compares with ours element by element).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time

import numpy as np


def _parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", required=True, help="Hugging Face BERT directory (config.json, model.safetensors)")
    p.add_argument("--train", required=True, help=".npz: input_ids, input_mask, segment_ids, start_positions, end_positions")
    p.add_argument("--eval", help=".npz: input_ids, input_mask, segment_ids, unique_ids (logits written for these)")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--epochs", type=float, default=1.0)
    p.add_argument("--max-steps", type=int, default=0, help="stop after this many steps (0: all); the schedule still spans every epoch")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--learning-rate", type=float, default=8e-5)
    p.add_argument("--warmup-ratio", type=float, default=0.1)
    p.add_argument("--weight-decay", type=float, default=0.01)
    p.add_argument("--adam-epsilon", type=float, default=1e-8)
    p.add_argument("--max-grad-norm", type=float, default=1.0, help="0 turns clipping off")
    p.add_argument("--shuffle", action=argparse.BooleanOptionalAction, default=True)
    p.add_argument("--drop-last", action=argparse.BooleanOptionalAction, default=True,
                   help="drop the last incomplete batch of each epoch (as our tf.data pipeline)")
    p.add_argument("--dropout", type=float, default=None, help="override hidden and attention dropout (e.g. 0)")
    p.add_argument("--dropout-masks",
                   help=".npz of keep masks (1 keep, 0 drop) per dropout site, used at every step instead of "
                        "random ones: 'embeddings', 'layer_<i>.attention_probs', 'layer_<i>.attention_output', "
                        "'layer_<i>.output' (tests/dropout_masks.py; the parity test's same-masks check)")
    p.add_argument("--head-init", help=".npz with weight [2, hidden] and bias [2] for qa_outputs")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0: torch's default)")
    p.add_argument("--predict-batch-size", type=int, default=32)
    p.add_argument("--save-weights", action="store_true",
                   help="write the trained parameters (Hugging Face names, float32) to weights.npz (parity test)")
    p.add_argument("--float64", action="store_true",
                   help="train in float64: the float32 runs' rounding-free reference (parity test)")
    return p.parse_args(argv)


def _steps(num_features, batch_size, epochs, drop_last):
    per_epoch = num_features // batch_size if drop_last else math.ceil(num_features / batch_size)
    return per_epoch, int(per_epoch * epochs)


def _use_dropout_masks(model, path: str) -> None:
    """Every dropout site of ``model`` multiplies by its given keep mask, scaled by 1/(1-p), in
    training (what nn.Dropout does with a random mask); nothing in eval. The attention
    probabilities' dropout is a call inside ``eager_attention_forward`` (transformers 5), so
    that function runs with ``nn.functional.dropout`` taking the layer's mask."""
    import torch
    from transformers.models.bert import modeling_bert

    masks = {k: torch.from_numpy(v.astype(np.float32)) for k, v in np.load(path).items()}

    def masked(x, keep, p, training):
        return x * keep.to(x.dtype) / (1.0 - p) if training and p > 0 else x

    class FixedMask(torch.nn.Module):
        def __init__(self, keep, p):
            super().__init__()
            self.keep, self.p = keep, p

        def forward(self, x):
            return masked(x, self.keep, self.p, self.training)

    bert = model.bert
    bert.embeddings.dropout = FixedMask(masks["embeddings"], bert.embeddings.dropout.p)
    for i, layer in enumerate(bert.encoder.layer):
        layer.attention.output.dropout = FixedMask(masks[f"layer_{i}.attention_output"],
                                                   layer.attention.output.dropout.p)
        layer.output.dropout = FixedMask(masks[f"layer_{i}.output"], layer.output.dropout.p)
        layer.attention.self.bertqa_keep = masks[f"layer_{i}.attention_probs"]
    eager = modeling_bert.eager_attention_forward

    def eager_with_mask(module, *args, **kwargs):
        real = torch.nn.functional.dropout

        def dropout(x, p=0.5, training=True, inplace=False):
            return masked(x, module.bertqa_keep, p, training)

        torch.nn.functional.dropout = dropout
        try:
            return eager(module, *args, **kwargs)
        finally:
            torch.nn.functional.dropout = real

    modeling_bert.eager_attention_forward = eager_with_mask


def main(argv=None):
    args = _parse_args(argv)
    import torch
    from transformers import BertConfig, BertForQuestionAnswering, get_linear_schedule_with_warmup

    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    os.makedirs(args.out, exist_ok=True)

    config = BertConfig.from_pretrained(args.checkpoint)
    if args.dropout is not None:
        config.hidden_dropout_prob = args.dropout
        config.attention_probs_dropout_prob = args.dropout
    # The attention probabilities' dropout can take a given mask only in eager attention.
    attention = {"attn_implementation": "eager"} if args.dropout_masks else {}
    model = BertForQuestionAnswering.from_pretrained(args.checkpoint, config=config, **attention)
    if args.dropout_masks:
        _use_dropout_masks(model, args.dropout_masks)
    if args.float64:
        model = model.double()
    if args.head_init:
        head = np.load(args.head_init)
        with torch.no_grad():
            model.qa_outputs.weight.copy_(torch.from_numpy(head["weight"]).to(model.qa_outputs.weight.dtype))
            model.qa_outputs.bias.copy_(torch.from_numpy(head["bias"]).to(model.qa_outputs.bias.dtype))
    else:  # let the caller give the other trainer the same initial head
        np.savez(os.path.join(args.out, "head_init.npz"),
                 weight=model.qa_outputs.weight.detach().numpy(), bias=model.qa_outputs.bias.detach().numpy())

    train = np.load(args.train)
    tensors = {k: torch.from_numpy(train[k].astype(np.int64)) for k in
               ("input_ids", "input_mask", "segment_ids", "start_positions", "end_positions")}
    n = tensors["input_ids"].shape[0]
    per_epoch, total_steps = _steps(n, args.batch_size, args.epochs, args.drop_last)
    warmup_steps = int(total_steps * args.warmup_ratio)

    # run_qa.py / Trainer: no weight decay on biases and LayerNorm weights.
    no_decay = ("bias", "LayerNorm.weight")
    groups = [
        {"params": [p for name, p in model.named_parameters() if not any(nd in name for nd in no_decay)],
         "weight_decay": args.weight_decay},
        {"params": [p for name, p in model.named_parameters() if any(nd in name for nd in no_decay)],
         "weight_decay": 0.0},
    ]
    optimizer = torch.optim.AdamW(groups, lr=args.learning_rate, eps=args.adam_epsilon)
    scheduler = get_linear_schedule_with_warmup(optimizer, warmup_steps, total_steps)
    generator = torch.Generator().manual_seed(args.seed)

    losses, lrs, step_ends = [], [], []
    start = time.time()
    step = 0
    max_steps = args.max_steps or total_steps
    model.train()
    while step < max_steps:
        order = torch.randperm(n, generator=generator) if args.shuffle else torch.arange(n)
        for b in range(per_epoch):
            if step >= max_steps:
                break
            idx = order[b * args.batch_size:(b + 1) * args.batch_size]
            out = model(input_ids=tensors["input_ids"][idx], attention_mask=tensors["input_mask"][idx],
                        token_type_ids=tensors["segment_ids"][idx],
                        start_positions=tensors["start_positions"][idx],
                        end_positions=tensors["end_positions"][idx])
            out.loss.backward()
            if args.max_grad_norm > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), args.max_grad_norm)
            lrs.append(scheduler.get_last_lr()[0])  # the rate this step applies
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()
            losses.append(float(out.loss.detach()))
            step_ends.append(time.time() - start)
            step += 1
            if step % 10 == 0 or step == max_steps:
                print(f"[hf] step {step}/{max_steps} loss {losses[-1]:.4f} "
                      f"(mean of last 10: {np.mean(losses[-10:]):.4f}) lr {lrs[-1]:.3g} "
                      f"{time.time() - start:.0f}s", file=sys.stderr, flush=True)
    train_seconds = time.time() - start

    log = {"loss": losses, "lr": lrs, "train_seconds": train_seconds, "steps": step, "step_ends": step_ends,
           "total_steps": total_steps, "warmup_steps": warmup_steps, "num_features": n,
           "torch": torch.__version__, "threads": torch.get_num_threads()}
    if args.eval:
        ev = np.load(args.eval)
        model.eval()
        starts, ends = [], []
        t0 = time.time()
        with torch.no_grad():
            for b in range(0, ev["input_ids"].shape[0], args.predict_batch_size):
                sl = slice(b, b + args.predict_batch_size)
                out = model(input_ids=torch.from_numpy(ev["input_ids"][sl].astype(np.int64)),
                            attention_mask=torch.from_numpy(ev["input_mask"][sl].astype(np.int64)),
                            token_type_ids=torch.from_numpy(ev["segment_ids"][sl].astype(np.int64)))
                starts.append(out.start_logits.float().numpy())
                ends.append(out.end_logits.float().numpy())
        np.savez(os.path.join(args.out, "eval_logits.npz"), unique_ids=ev["unique_ids"],
                 start_logits=np.concatenate(starts), end_logits=np.concatenate(ends))
        log["predict_seconds"] = time.time() - t0
    if args.save_weights:
        np.savez(os.path.join(args.out, "weights.npz"),
                 **{name: p.detach().float().numpy() for name, p in model.named_parameters()})
    with open(os.path.join(args.out, "log.json"), "w") as f:
        json.dump(log, f)
    return 0


if __name__ == "__main__":
    sys.exit(main())
