"""Archive bags (issue 15 item 5): `filmfund media bag` makes a BagIt bag of a card's originals,
structure files and a manifest, valid by the `bagit` library, to a folder or S3 (moto server);
`filmfund media verify --bag` reads it back and names a damaged file; a failure leaves nothing."""
from __future__ import annotations

import json
from pathlib import Path

import bagit
import pytest

from filmfund.media import avchd
from tests.media import camfiles

pytestmark = pytest.mark.one_database  # ffmpeg's work, not the database's (tests/conftest.py)


@pytest.fixture(scope="module")
def card(tmp_path_factory) -> Path:
    """CARD_A: a good take and one whose clip info says it is longer than the copy (truncated)."""
    root = tmp_path_factory.mktemp("cards")
    work = tmp_path_factory.mktemp("work")
    good = camfiles.camcorder_mts(work / "a.MTS", work, timecode=b"\x00\x00\x00\x10", time="090010").read_bytes()
    other = camfiles.camcorder_mts(work / "b.MTS", work, timecode=b"\x00\x05\x00\x10", time="090030").read_bytes()
    cut = other[: len(other) // 2 // 6144 * 6144]
    camfiles.card(root / "CARD_A", {"00000": good, "00001": cut}, [("00000", 1), ("00001", 1)],
                  expected={"00001": len(other)})
    return root / "CARD_A"


@pytest.fixture
def assets(app, card, drain):
    from filmfund.extensions import db
    from filmfund.media import services

    results = services.ingest_paths([card])
    db.session.commit()
    drain()
    return [r.asset for r in results]


STREAM = "data/CARD_A/PRIVATE/AVCHD/BDMV/STREAM"
BDMV = "data/CARD_A/PRIVATE/AVCHD/BDMV"


def test_a_card_becomes_a_valid_bag_with_its_structure_files_and_manifest(app, runner, assets, card, tmp_path):
    out = tmp_path / "bags" / "card-a"
    result = runner.invoke(args=["media", "bag", "--card", "CARD_A", "--to", str(out)])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"{out} bag=valid files=")
    bag = bagit.Bag(str(out))
    bag.validate()  # every checksum recomputed by bagit
    assert bag.algorithms == ["sha256"]
    payload = set(bag.payload_entries())
    assert {f"{STREAM}/00000.MTS", f"{STREAM}/00001.MTS", f"{BDMV}/CLIPINF/00000.CPI", f"{BDMV}/CLIPINF/00001.CPI",
            f"{BDMV}/PLAYLIST/00000.MPL", f"{BDMV}/INDEX.BDM", "data/filmfund-manifest.json"} == payload
    for name in ("00000.MTS", "00001.MTS"):  # the originals, byte for byte
        assert (out / STREAM / name).read_bytes() == (card / "PRIVATE/AVCHD/BDMV/STREAM" / name).read_bytes()
    assert (out / BDMV / "CLIPINF/00001.CPI").read_bytes() == (card / "PRIVATE/AVCHD/BDMV/CLIPINF/00001.CPI").read_bytes()
    manifest = json.loads((out / "data/filmfund-manifest.json").read_text())
    by_file = {a["sources"][0]["path"].rsplit("/", 1)[1]: a for a in manifest["assets"]}
    good, cut = by_file["00000.MTS"], by_file["00001.MTS"]
    asset = next(a for a in assets if a.public_id == good["id"])
    assert good["sha256"] == asset.sha256 == bag.entries[f"{STREAM}/00000.MTS"]["sha256"]
    assert good["recorded_at"] == "2024-05-17T08:00:10+00:00" and good["camera"] == "Panasonic"
    assert good["timecode"] == "10:00:00:00" and good["problems"] == []
    assert cut["state"] == "damaged" and any("truncat" in p["code"] for p in cut["problems"])
    assert cut["sources"][0]["expected_size"] > cut["sources"][0]["size"]
    assert {s["path"] for s in good["structure_files"]} >= {f"{BDMV}/CLIPINF/00000.CPI", f"{BDMV}/INDEX.BDM"}
    info = bag.info
    assert info["Payload-Oxum"].endswith(".7") and good["id"] in info["External-Identifier"]
    assert not list(out.parent.glob(".*partial*"))


def test_verify_bag_names_the_damaged_and_the_missing_file(app, runner, assets, tmp_path):
    out = tmp_path / "bag"
    assert runner.invoke(args=["media", "bag", *[a.public_id for a in assets], "--to", str(out)]).exit_code == 0
    ok = runner.invoke(args=["media", "verify", "--bag", str(out)])
    assert ok.exit_code == 0 and f"{out} bag=valid files=7" in ok.stdout
    victim = out / STREAM / "00000.MTS"
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0xFF
    victim.write_bytes(bytes(data))
    (out / BDMV / "INDEX.BDM").unlink()
    bad = runner.invoke(args=["media", "verify", "--bag", str(out)])
    assert bad.exit_code == 1 and "bag=INVALID" in bad.stdout
    assert f"damaged: {STREAM}/00000.MTS" in bad.stderr and f"missing: {BDMV}/INDEX.BDM" in bad.stderr
    assert "00001.MTS" not in bad.stderr


def test_a_stored_original_that_changed_fails_the_bag_and_leaves_nothing(app, runner, assets, tmp_path):
    from filmfund.media import services

    src = assets[0].sources[0]
    path = services.storage().local_file(src.storage_key)
    path.write_bytes(path.read_bytes()[:-192])
    out = tmp_path / "bags" / "card-a"
    result = runner.invoke(args=["media", "bag", assets[0].public_id, "--to", str(out)])
    assert result.exit_code == 2 and "does not match its checksum" in result.stderr and "00000.MTS" in result.stderr
    assert not out.exists() and list((tmp_path / "bags").iterdir()) == []


def test_a_bag_never_overwrites(app, runner, assets, tmp_path):
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("mine")
    result = runner.invoke(args=["media", "bag", assets[0].public_id, "--to", str(tmp_path / "full")])
    assert result.exit_code == 2 and "already exists" in result.stderr
    assert [p.name for p in (tmp_path / "full").iterdir()] == ["keep.txt"]


def test_a_bag_is_audited(app, runner, assets, tmp_path):
    import sqlalchemy as sa

    from filmfund.audit import AuditEntry
    from filmfund.extensions import db

    assert runner.invoke(args=["media", "bag", assets[0].public_id, "--to", str(tmp_path / "b")]).exit_code == 0
    entry = db.session.scalars(sa.select(AuditEntry).where(AuditEntry.action == "export.bag")).one()
    assert assets[0].public_id in entry.details


@pytest.mark.parametrize("storage_backend", ["s3"])
def test_a_bag_on_s3_is_read_back_and_a_failure_leaves_no_object(app, runner, assets, s3_bucket, moto_server,
                                                                 storage_backend):
    import boto3

    s3 = boto3.client("s3", endpoint_url=moto_server, region_name="us-east-1")
    to = f"s3://{s3_bucket}/bags/card-a"
    result = runner.invoke(args=["media", "bag", "--card", "CARD_A", "--to", to])
    assert result.exit_code == 0, result.output
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=s3_bucket, Prefix="bags/card-a/")["Contents"]}
    assert {f"bags/card-a/{STREAM}/00000.MTS", "bags/card-a/bagit.txt", "bags/card-a/manifest-sha256.txt",
            "bags/card-a/tagmanifest-sha256.txt", "bags/card-a/bag-info.txt",
            "bags/card-a/data/filmfund-manifest.json"} <= keys
    ok = runner.invoke(args=["media", "verify", "--bag", to])
    assert ok.exit_code == 0 and "bag=valid files=7" in ok.stdout, ok.output
    again = runner.invoke(args=["media", "bag", "--card", "CARD_A", "--to", to])
    assert again.exit_code == 2 and "already holds objects" in again.stderr
    s3.put_object(Bucket=s3_bucket, Key=f"bags/card-a/{STREAM}/00001.MTS", Body=b"not the take")
    s3.put_object(Bucket=s3_bucket, Key="bags/card-a/data/extra.txt", Body=b"x")
    bad = runner.invoke(args=["media", "verify", "--bag", to])
    assert bad.exit_code == 1 and f"damaged: {STREAM}/00001.MTS" in bad.stderr
    assert "not in the manifest: data/extra.txt" in bad.stderr

    from filmfund.media import services  # a stored original that changed: nothing under the new prefix

    src = assets[0].sources[0]
    s3.put_object(Bucket=s3_bucket, Key=f"media/{src.storage_key}", Body=b"damaged")
    assert services.storage().size(src.storage_key) == 7
    failed = runner.invoke(args=["media", "bag", assets[0].public_id, "--to", f"s3://{s3_bucket}/bags/other"])
    assert failed.exit_code == 2
    assert s3.list_objects_v2(Bucket=s3_bucket, Prefix="bags/other").get("KeyCount") == 0


def test_the_card_structure_is_what_ingest_kept(assets):
    """The bag's structure files are the sidecars ingest stored (avchd.card_groups)."""
    names = {s.name for a in assets for s in a.sidecars}
    assert {"BDMV/CLIPINF/00000.CPI", "BDMV/PLAYLIST/00000.MPL", "BDMV/INDEX.BDM"} <= names
    assert avchd.parse_clpi((Path(assets[0].sources[0].original_path).parents[1] / "CLIPINF/00000.CPI").read_bytes())
