"""The local cluster's configuration: one static quorum, replication 3, a majority in sync."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from devkit import kafka_local


def props(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines() if line and not line.startswith("#"))


def test_a_cluster_node_votes_in_a_static_quorum_and_replicates_to_every_node(tmp_path: Path) -> None:
    voters = "1@127.0.0.1:21001,2@127.0.0.1:21003,3@127.0.0.1:21005"
    node = props(kafka_local._server_properties(21002, 21003, tmp_path, node_id=2, voters=voters, replication=3))
    assert node["node.id"] == "2"
    assert node["controller.quorum.voters"] == voters
    assert "controller.quorum.bootstrap.servers" not in node
    assert node["listeners"] == "PLAINTEXT://127.0.0.1:21002,CONTROLLER://127.0.0.1:21003"
    for key in (
        "default.replication.factor",
        "offsets.topic.replication.factor",
        "transaction.state.log.replication.factor",
    ):
        assert node[key] == "3"
    assert node["min.insync.replicas"] == node["transaction.state.log.min.isr"] == "2"


def test_the_single_node_broker_keeps_its_standalone_configuration(tmp_path: Path) -> None:
    single = props(kafka_local._server_properties(9092, 9093, tmp_path))
    assert single["node.id"] == "1"
    assert single["controller.quorum.bootstrap.servers"] == "127.0.0.1:9093"
    assert single["default.replication.factor"] == single["min.insync.replicas"] == "1"


def test_the_cluster_layout_keeps_its_ports_across_restarts(tmp_path: Path) -> None:
    first = kafka_local._cluster_layout(tmp_path, 3, None)
    ports = [p for n in first["nodes"] for p in (n["port"], n["controller_port"])]
    assert len(set(ports)) == 6
    assert [n["node_id"] for n in first["nodes"]] == [1, 2, 3]
    assert (
        kafka_local._cluster_layout(tmp_path, 3, None) == first == json.loads((tmp_path / "cluster.json").read_text())
    )
    assert kafka_local.is_cluster(tmp_path)
    with pytest.raises(kafka_local.BrokerError, match="3-node cluster, not 5"):
        kafka_local._cluster_layout(tmp_path, 5, None)


def test_a_given_first_port_lays_the_nodes_out_consecutively(tmp_path: Path) -> None:
    layout = kafka_local._cluster_layout(tmp_path, 3, 24000)
    assert [(n["port"], n["controller_port"]) for n in layout["nodes"]] == [
        (24000, 24001),
        (24002, 24003),
        (24004, 24005),
    ]
