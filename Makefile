# multimodal_kit — `make help` lists the targets.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
# Which torch build `install` puts in the venv: auto (CUDA build when `nvidia-smi` works, else the CPU build),
# cpu, or cuda. The CPU build is ~200 MB instead of several GB of CUDA libraries.
TORCH ?= auto
TORCH_VERSION ?= 2.13.0
TORCH_CPU_INDEX ?= https://download.pytorch.org/whl/cpu
# Extra flags for the demo's `mmkit fit`, e.g. DEMO_ARGS='--trainer.max_time 00:00:02:00'
DEMO_ARGS ?=
# e.g. BENCH_ARGS="--variants seq2seq" (the shipped files by default; ablations: --variants seq2seq-initial-state-only …;
# a shorter budget: --max-epochs 3)
BENCH_ARGS ?=
# gan-cycle: which pair (image_caption: text → image; text_audio: text → audio), the evaluator's training budget in
# epochs (as benchmarks/gan_quality.py trains it), and extra flags for the GAN's `mmkit fit`, e.g.
# GAN_ARGS='--trainer.max_epochs 5'. GAN=vision_aided_gan (images) also trains the Seq2Seq captioner whose frozen
# encoder its second discriminator reads (6 epochs, as benchmarks/gan_quality.py does).
PAIR ?= image_caption
GAN ?= gan
EVALUATOR_EPOCHS_image_caption ?= 6
EVALUATOR_EPOCHS_text_audio ?= 20
GAN_ARGS ?=
EVALUATOR_DATA_image_caption :=
EVALUATOR_DATA_text_audio := --data.init_args.embedded_options '{"single_word": true}'
# tts-cycle: which synthesizer (attention|seq2seq), and extra flags for its `mmkit fit`, e.g. TTS_ARGS='--trainer.max_time 00:00:05:00'
TTS ?= attention
TTS_ARGS ?=
TTS_EVALUATOR_TIME ?= 00:00:06:00
TTS_VOICE := --data.init_args.embedded_options '{"voice": "en-us+m3"}'
# same-seed: the metrics to compare with (benchmarks/same_seed.py's output on an earlier commit)
REF ?= benchmarks/same_seed_reference.json
# e.g. OVERHEAD_ARGS="--experiments gan_image_caption --steps 100"
OVERHEAD_ARGS ?=
export WANDB_SILENT ?= true

.PHONY: help install demo gan-cycle tts-cycle test test-all lint bench bench-captions bench-speech bench-gan bench-tts bench-qa bench-contrastive bench-matching bench-editing bench-overhead bench-cache bench-first-step bench-lm bench-decoding bench-matrix gpu-check same-seed clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{n[NR] = $$1; d[NR] = $$2; if (length($$1) > w) w = length($$1)} END {for (i = 1; i <= NR; i++) printf("  make %-" w "s  %s\n", n[i], d[i])}'

install: $(VENV)/.installed  ## create .venv with the kit and its dev tools (idempotent)

$(VENV)/.installed: pyproject.toml
	@test -x $(PY) || python3 -m venv $(VENV)
	@if ! $(PY) -c "import torch" 2>/dev/null; then \
	  build=$(TORCH); \
	  if [ "$$build" = auto ]; then build=cpu; nvidia-smi >/dev/null 2>&1 && build=cuda; fi; \
	  echo "Installing torch ($$build build)"; \
	  if [ "$$build" = cpu ]; then \
	    $(PIP) install -q --retries 1 --timeout 15 --no-deps --extra-index-url $(TORCH_CPU_INDEX) "torch==$(TORCH_VERSION)"; \
	  else \
	    $(PIP) install -q "torch>=2.4"; \
	  fi; \
	fi
	$(PIP) install -q -e ".[dev]"
	@touch $@

demo: install  ## train Seq2Seq on the embedded shapes set, test the best checkpoint, print where everything is
	@run=runs/demo-$$(date +%Y%m%d-%H%M%S); \
	$(VENV)/bin/mmkit fit -c experiments/seq2seq_image_caption.yaml --run_dir $$run $(DEMO_ARGS) && \
	best=$$(ls $$run/checkpoints/epoch*.ckpt | head -n 1) && \
	$(VENV)/bin/mmkit test --ckpt_path $$best --results_path $$run/test_metrics.json && \
	echo && echo "Run directory:   $$run" && echo "Best checkpoint: $$best" && \
	echo "Test metrics:    $$run/test_metrics.json" && echo "Sample captions: $$run/media/val_samples/" && \
	echo "Curves:          $$run/curves.png, $$run/metrics.csv" && \
	echo "W&B files:       $$run/wandb/ (offline without credentials; upload with: wandb sync $$run/wandb/offline-run-*)"

gan-cycle: install  ## train an evaluator, then the GAN on it (PAIR=image_caption|text_audio, GAN=gan|vision_aided_gan); print the cycle scores
	@run=runs/gan-cycle-$(PAIR)-$$(date +%Y%m%d-%H%M%S); \
	$(VENV)/bin/mmkit fit -c experiments/attention_$(PAIR).yaml --run_dir $$run/evaluator \
	  --trainer.max_epochs $(EVALUATOR_EPOCHS_$(PAIR)) $(EVALUATOR_DATA_$(PAIR)) && \
	evaluator=$$(ls $$run/evaluator/checkpoints/epoch*.ckpt | head -n 1) || exit 1; \
	features=; if [ "$(GAN)" = vision_aided_gan ]; then \
	  $(VENV)/bin/mmkit fit -c experiments/seq2seq_$(PAIR).yaml --run_dir $$run/feature_encoder \
	    --trainer.max_epochs 6 || exit 1; \
	  features="--model.init_args.feature_encoder.init_args.checkpoint $$(ls $$run/feature_encoder/checkpoints/epoch*.ckpt | head -n 1)"; \
	fi; \
	$(VENV)/bin/mmkit fit -c experiments/$(GAN)_$(PAIR).yaml --run_dir $$run/gan --model.init_args.evaluator $$evaluator \
	  $$features $(GAN_ARGS) && \
	best=$$(ls $$run/gan/checkpoints/epoch*.ckpt | head -n 1) && \
	$(VENV)/bin/mmkit test --ckpt_path $$best --results_path $$run/gan/test_metrics.json && \
	echo && echo "Evaluator:         $$evaluator" && echo "GAN checkpoint:    $$best" && \
	echo "Cycle scores:      $$run/gan/test_metrics.json" && cat $$run/gan/test_metrics.json && \
	echo "Generated samples: $$run/gan/media/generated/ (fixed prompts, every validation epoch)"

tts-cycle: install  ## train a recognizer of the single voice, then a synthesizer it reads (TTS=attention|seq2seq); print the scores
	@run=runs/tts-cycle-$(TTS)-$$(date +%Y%m%d-%H%M%S); \
	$(VENV)/bin/mmkit fit -c experiments/attention_text_audio.yaml --run_dir $$run/evaluator \
	  --trainer.max_time $(TTS_EVALUATOR_TIME) $(TTS_VOICE) && \
	evaluator=$$(ls $$run/evaluator/checkpoints/epoch*.ckpt | head -n 1) && \
	$(VENV)/bin/mmkit fit -c experiments/$(TTS)_speech_synthesis.yaml --run_dir $$run/tts \
	  --model.init_args.evaluator $$evaluator $(TTS_ARGS) && \
	best=$$(ls $$run/tts/checkpoints/epoch*.ckpt | head -n 1) && \
	$(VENV)/bin/mmkit test --ckpt_path $$best --results_path $$run/tts/test_metrics.json && \
	echo && echo "Evaluator:        $$evaluator" && echo "Synthesizer:      $$best" && \
	echo "Scores:           $$run/tts/test_metrics.json" && cat $$run/tts/test_metrics.json && \
	echo "Pictures, sound:  $$run/tts/media/synthesis/ (every validation epoch)" && \
	echo "Speak:            mmkit predict --ckpt_path $$best --data.predict_path prompts.txt --output_dir out/"

test: install  ## the default test suite (offline, CPU, no multi-process or benchmark-script tests), 20 slowest shown
	WANDB_MODE=offline $(VENV)/bin/pytest -q -m "not slow" --durations=20

test-all: install  ## every test, the slow ones too (DDP on 2 CPU processes, SLURM, benchmark scripts); what CI runs
	WANDB_MODE=offline $(VENV)/bin/pytest -q --durations=20

lint: install  ## ruff
	$(VENV)/bin/ruff check multimodal_kit tests benchmarks examples experiments

bench: bench-captions bench-speech bench-gan bench-tts bench-qa bench-contrastive bench-matching bench-editing bench-overhead bench-cache bench-first-step bench-lm bench-decoding bench-matrix  ## every benchmark (about 5 hours); figures go to benchmarks/RESULTS.md

bench-captions: install  ## captioning on shapes: both files at their 150k-sample budgets (~17 min; BENCH_ARGS="--variants seq2seq")
	WANDB_MODE=offline $(PY) benchmarks/caption_quality.py $(BENCH_ARGS)

bench-speech: install  ## speech recognition on spoken: seq2seq at 150k samples, attention at 240k (~35 min)
	WANDB_MODE=offline $(PY) benchmarks/speech_quality.py $(BENCH_ARGS)

bench-gan: install  ## GAN text → image and text → audio, each with its evaluator (about 55 minutes)
	WANDB_MODE=offline $(PY) benchmarks/gan_quality.py $(BENCH_ARGS)

bench-tts: install  ## speech synthesis, attention vs Seq2Seq at 300k training samples each, read by a recognizer (~90 min; MMKIT_TTS_SAMPLES=… for less)
	WANDB_MODE=offline $(PY) benchmarks/speech_synthesis.py $(BENCH_ARGS)

bench-qa: install  ## image question answering, attention vs pooled vs blind at 300k training samples each (about 35 minutes)
	WANDB_MODE=offline $(PY) benchmarks/image_qa.py $(BENCH_ARGS)

bench-contrastive: install  ## CLIP on shapes, CLAP on spoken, and the captioner-likelihood ranking they replace (~35 min)
	WANDB_MODE=offline $(PY) benchmarks/contrastive.py $(BENCH_ARGS)

bench-matching: install  ## image–text matching: cross-attention vs the dual encoder's cosine vs the caption alone
	WANDB_MODE=offline $(PY) benchmarks/matching.py $(BENCH_ARGS)

bench-editing: install  ## text-guided editing, read back by a captioner trained just before
	WANDB_MODE=offline $(PY) benchmarks/editing.py $(BENCH_ARGS)

bench-overhead: install  ## kit vs a hand-written PyTorch loop, and loader vs step rate, for the six experiments (~15 min)
	WANDB_MODE=offline $(PY) benchmarks/overhead.py $(OVERHEAD_ARGS)

bench-cache: install  ## epoch time with and without the feature cache: CLIP ViT-B/32 and wav2vec 2.0 base, random (~15 min)
	WANDB_MODE=offline $(PY) benchmarks/feature_cache.py $(BENCH_ARGS)

bench-first-step: install  ## seconds from mmkit fit to the first step on 20,000 JPEGs: serial, parallel, cached check (~5 min)
	$(PY) benchmarks/first_step.py $(BENCH_ARGS)

bench-lm: install  ## a pretrained LM as the decoder (prefix, cross-attention, LoRA) vs the LSTM: speed and parameters (~10 min)
	WANDB_MODE=offline $(PY) benchmarks/pretrained_lm.py $(BENCH_ARGS)

bench-decoding: install  ## GPT-2-small-shaped LM: 60-token greedy and beam-3 decoding with and without the KV cache (~8 min)
	$(PY) benchmarks/lm_decoding.py $(BENCH_ARGS)

bench-matrix: install  ## the six experiments' test metrics against their targets (from the quality benchmarks' figures)
	$(PY) benchmarks/quality_matrix.py

gpu-check:  ## on a lent GPU machine: overhead fp32/bf16, loader rate, the attention captioner to its target (<8 min; GPU_CHECK_ARGS=--cpu: a dry run)
	bash benchmarks/gpu_check.sh $(GPU_CHECK_ARGS)

same-seed: install  ## short same-seed fits of six shipped files, compared to the last bit with REF (~4 min)
	WANDB_MODE=offline $(PY) benchmarks/same_seed.py --out benchmarks/out/same_seed-$$(git rev-parse --short HEAD).json \
	  --reference $(REF)

clean:  ## remove the venv, runs and caches of this checkout
	rm -rf $(VENV) runs .pytest_cache .ruff_cache
