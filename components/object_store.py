"""Where the push destination lives: local disks and gs:// through TensorFlow, s3:// through s3fs.

The pipeline's artifacts never come here: TFX reads and writes artifact URIs with
``tf.io.gfile``, and on Kubeflow Pipelines our task entrypoint hands executors the local paths
where KFP's launcher mounts them (``kubeflow/kfp_task_entrypoint.py``). The push destination and
the ``latest_published`` baseline are different: they are plain URIs that no launcher mounts,
read and written by TflitePusher and QaEvaluator themselves.

TensorFlow 2.21 reads gs:// but has no s3 file system ("File system scheme 's3' not
implemented"; the s3 plugin moved to tensorflow-io, whose newest wheels stop at TF 2.16). For
s3:// we use s3fs (fsspec's S3 implementation) rather than boto3, because:

* it is a file-system API (``ls``, ``exists``, ``open``, ``put_file``, ``rm``), the shape of the
  gfile calls the pusher already makes, so both schemes share one algorithm;
* it has S3's conditional create (``If-None-Match: *``, ``mode="create"``), with which a pusher
  claims a version atomically: on S3 two pushers can never publish the same version, which
  gfile cannot promise on gs://;
* fsspec is already in the dependency set (apache-beam, gcsfs), and s3fs follows botocore's
  configuration: credentials and ``AWS_ENDPOINT_URL`` / ``AWS_ENDPOINT_URL_S3`` for
  S3-compatible servers such as MinIO.

``minio://`` is Kubeflow's own name for its bundled MinIO, known only to KFP's launcher; no
client library resolves it. A push destination on MinIO is written ``s3://bucket/path`` with
``AWS_ENDPOINT_URL`` pointing at the MinIO service.
"""
from __future__ import annotations

import os
import shutil
from typing import IO, List

from bert_qa import _env  # noqa: F401
import tensorflow as tf

from bert_qa.errors import InputError

# Schemes a push destination (and a latest_published baseline) may use, and by what.
GFILE_SCHEMES = ("", "file", "gs")  # local paths and Cloud Storage: tf.io.gfile
S3_SCHEMES = ("s3",)  # s3fs
SUPPORTED_SCHEMES = GFILE_SCHEMES + S3_SCHEMES


class UnsupportedSchemeError(InputError):
    """A destination URI that neither TensorFlow nor s3fs can write."""


def scheme_of(path: str) -> str:
    return path.split("://", 1)[0].lower() if "://" in path else ""


def check_destination(path: str, what: str = "push destination") -> None:
    """Refuses a URI no store here can write, and says what to use instead."""
    scheme = scheme_of(path)
    if scheme in SUPPORTED_SCHEMES:
        if scheme not in ("", "file") and not path.split("://", 1)[1].split("/", 1)[0]:
            raise UnsupportedSchemeError(f"{what} {path!r} names no bucket")
        return
    hint = (" minio:// is Kubeflow's internal name for its MinIO, which only KFP's launcher resolves: "
            "write s3://BUCKET/PATH and set AWS_ENDPOINT_URL to the MinIO service "
            "(e.g. http://minio-service.kubeflow:9000)" if scheme == "minio" else "")
    raise UnsupportedSchemeError(f"{what} {path!r}: scheme {scheme + '://'!r} is not supported "
                                 f"(use a local path, gs:// or s3://).{hint}")


def _s3fs():
    import s3fs  # lazy: s3fs and its aiobotocore stack, only for s3:// destinations

    # No listing cache: a pusher must see the versions other pushers published a moment ago.
    return s3fs.S3FileSystem(use_listings_cache=False, skip_instance_cache=True)


def _is_s3(path: str) -> bool:
    """s3:// goes to s3fs; every other path to gfile (which names schemes it lacks itself)."""
    scheme = scheme_of(path)
    if scheme == "minio":
        check_destination(path, "path")  # raises, with what to write instead
    return scheme in S3_SCHEMES


def _key(path: str) -> str:
    return path.split("://", 1)[1].rstrip("/")


def exists(path: str) -> bool:
    if _is_s3(path):
        return _s3fs().exists(_key(path))
    return tf.io.gfile.exists(path)


def isdir(path: str) -> bool:
    if _is_s3(path):
        return _s3fs().isdir(_key(path))
    return tf.io.gfile.isdir(path)


def listdir(path: str) -> List[str]:
    """Entry names (not paths) directly under ``path``; a trailing '/' is stripped."""
    if _is_s3(path):
        fs, key = _s3fs(), _key(path)
        if not fs.isdir(key):
            return []
        return sorted(entry.rstrip("/").rsplit("/", 1)[-1] for entry in fs.ls(key, detail=False)
                      if entry.rstrip("/") != key)
    return [name.rstrip("/") for name in tf.io.gfile.listdir(path)]


def makedirs(path: str) -> None:
    if _is_s3(path):
        return  # S3 has no directories: a key prefix exists once an object is under it
    tf.io.gfile.makedirs(path)


def open_file(path: str, mode: str = "rb") -> IO:
    if _is_s3(path):
        return _s3fs().open(_key(path), mode)
    return tf.io.gfile.GFile(path, mode)


def read_bytes(path: str) -> bytes:
    with open_file(path, "rb") as f:
        return f.read()


def write_bytes(path: str, data: bytes) -> None:
    """The whole object at once (an S3 PUT is visible only once complete)."""
    if _is_s3(path):
        _s3fs().pipe_file(_key(path), data)
        return
    tf.io.gfile.makedirs(os.path.dirname(path))
    with tf.io.gfile.GFile(path, "wb") as f:
        f.write(data)


def create_exclusive(path: str, data: bytes) -> bool:
    """Writes ``path`` only if it does not exist; False if it did.

    Atomic on S3 (conditional PUT, ``If-None-Match: *``) and on local disks (``O_EXCL``). On
    gs:// through gfile it is a check then a write: two writers at the same instant can both
    succeed (gfile exposes no generation preconditions).
    """
    if _is_s3(path):
        try:
            _s3fs().pipe_file(_key(path), data, mode="create")
            return True
        except FileExistsError:
            return False
    if "://" not in path:
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        return True
    if tf.io.gfile.exists(path):
        return False
    write_bytes(path, data)
    return True


def copy(source: str, destination: str, overwrite: bool = False) -> None:
    """Copies one file; either side may be any supported store."""
    if not (_is_s3(source) or _is_s3(destination)):
        tf.io.gfile.copy(source, destination, overwrite=overwrite)
        return
    if not overwrite and exists(destination):
        raise FileExistsError(destination)
    if _is_s3(destination) and "://" not in source:
        _s3fs().put_file(source, _key(destination))
        return
    if _is_s3(source) and "://" not in destination:
        os.makedirs(os.path.dirname(destination) or ".", exist_ok=True)
        _s3fs().get_file(_key(source), destination)
        return
    with open_file(source, "rb") as src, open_file(destination, "wb") as dst:
        shutil.copyfileobj(src, dst, length=1 << 20)


def rmtree(path: str) -> None:
    if _is_s3(path):
        fs, key = _s3fs(), _key(path)
        if fs.exists(key):
            fs.rm(key, recursive=True)
        return
    tf.io.gfile.rmtree(path)


def mtime_ns(path: str) -> int:
    """Last modification time of a file (an S3 object's LastModified)."""
    if _is_s3(path):
        info = _s3fs().info(_key(path))
        modified = info.get("LastModified")
        return int(modified.timestamp() * 1e9) if modified is not None else 0
    return tf.io.gfile.stat(path).mtime_nsec
