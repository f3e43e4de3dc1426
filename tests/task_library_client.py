"""Answers questions with the TFLite Task Library's BertQuestionAnswerer; prints JSON.

Runs inside an isolated environment (tflite-support 0.4.4 needs protobuf 3.20 and
numpy 1.x, which the project cannot have), started by tests/test_task_library.py:

    uv run --no-project --python 3.11 --with tflite-support==0.4.4 --with protobuf==3.20.3 \
        --with 'numpy<2' python tests/task_library_client.py --questions Q.json M1.tflite ...

It imports nothing from this project. Q.json is a list of {"id", "context", "question"}.
Output, per model path: {"ok": true, "answers": {id: [{"text", "start", "end", "logit"}]}}
(best first, positions are token indices in the model input, as the Task Library reports
them) or {"ok": false, "error": "<type>: <message>"} when the Task Library rejects the file.
"""
import argparse
import json
import os
import sys
import time

# How the tests start this client: the command (an isolated environment), then CLIENT, its path.
TASK_LIBRARY_ENV = ["uv", "run", "--no-project", "--python", "3.11",
                    "--with", "tflite-support==0.4.4", "--with", "protobuf==3.20.3",
                    "--with", "numpy<2", "python"]
CLIENT = os.path.abspath(__file__)


def answer_all(model_path, questions):
    from tflite_support.task import text

    try:
        answerer = text.BertQuestionAnswerer.create_from_file(model_path)
    except Exception as err:  # the Task Library raises RuntimeError/ValueError with its status
        return {"ok": False, "stage": "create", "error": f"{type(err).__name__}: {err}"}
    answers = {}
    start = time.perf_counter()
    for q in questions:
        try:
            result = answerer.answer(q["context"], q["question"])
        except Exception as err:
            return {"ok": False, "stage": "answer", "error": f"{type(err).__name__}: {err}"}
        answers[q["id"]] = [
            {"text": a.text, "start": a.pos.start, "end": a.pos.end, "logit": a.pos.logit}
            for a in result.answers]
    seconds = time.perf_counter() - start
    return {"ok": True, "answers": answers, "seconds_per_question": seconds / max(len(questions), 1)}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", required=True, help="JSON list of {id, context, question}")
    parser.add_argument("models", nargs="+", help=".tflite files with Task Library metadata")
    args = parser.parse_args(argv)
    with open(args.questions, encoding="utf-8") as f:
        questions = json.load(f)
    json.dump({path: answer_all(path, questions) for path in args.models}, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
