"""The KeyValueStore writer: the store is found by name in moto (CloudFront emulates stores as
resources), the data API (which no emulator serves) is checked call by call with Stubber."""

from __future__ import annotations

from datetime import UTC, datetime

from botocore.stub import Stubber
import pytest

from deployment_service import aws as aws_clients
from deployment_service.integrations import edge_store


def describe_answer(arn: str, etag: str) -> dict:
    return {
        "ItemCount": 1,
        "TotalSizeInBytes": 10,
        "KvsARN": arn,
        "Created": datetime(2026, 1, 1, tzinfo=UTC),
        "ETag": etag,
    }


def update_answer(etag: str) -> dict:
    return {"ItemCount": 1, "TotalSizeInBytes": 10, "ETag": etag}


@pytest.fixture
def store(aws, settings) -> str:
    """The store's ARN (made in moto under the configured name)."""
    answer = aws_clients.client("cloudfront").create_key_value_store(Name=settings.TROY_EDGE_KVS_NAME)
    return answer["KeyValueStore"]["ARN"]


@pytest.fixture
def data_api(store):
    with Stubber(aws_clients.client("cloudfront-keyvaluestore")) as stubber:
        yield stubber
        stubber.assert_no_pending_responses()


def test_the_store_is_found_by_name(store):
    assert edge_store.store_arn() == store


def test_a_missing_store_says_to_run_bootstrap(aws, settings):
    with pytest.raises(edge_store.KeyValueStoreNotFound, match="bootstrap_aws"):
        edge_store.store_arn()


def test_a_put_reads_the_etag_and_writes_with_it(store, data_api):
    data_api.add_response("describe_key_value_store", describe_answer(store, "E1"), {"KvsARN": store})
    data_api.add_response(
        "update_keys",
        update_answer("E2"),
        {"KvsARN": store, "IfMatch": "E1", "Puts": [{"Key": "blog.sites.troy.test", "Value": "p1/b1"}]},
    )

    assert edge_store.keys_update(puts={"blog.sites.troy.test": "p1/b1"}) == 1


def test_a_conflict_rereads_the_etag_and_retries(store, data_api):
    puts = [{"Key": "blog.sites.troy.test", "Value": "p1/b2"}]
    data_api.add_response("describe_key_value_store", describe_answer(store, "E1"), {"KvsARN": store})
    data_api.add_client_error(
        "update_keys",
        service_error_code="ConflictException",
        http_status_code=409,
        expected_params={"KvsARN": store, "IfMatch": "E1", "Puts": puts},
    )
    data_api.add_response("describe_key_value_store", describe_answer(store, "E7"), {"KvsARN": store})
    data_api.add_response("update_keys", update_answer("E8"), {"KvsARN": store, "IfMatch": "E7", "Puts": puts})

    assert edge_store.keys_update(puts={"blog.sites.troy.test": "p1/b2"}) == 1


def test_conflicts_past_the_bound_go_to_the_caller(store, data_api):
    data_api.add_response("describe_key_value_store", describe_answer(store, "E0"), {"KvsARN": store})
    for attempt in range(edge_store.CONFLICT_ATTEMPTS):
        data_api.add_client_error("update_keys", service_error_code="ConflictException", http_status_code=409)
        if attempt < edge_store.CONFLICT_ATTEMPTS - 1:
            data_api.add_response("describe_key_value_store", describe_answer(store, f"E{attempt + 1}"))

    with pytest.raises(aws_clients.client("cloudfront-keyvaluestore").exceptions.ConflictException):
        edge_store.keys_update(puts={"a.sites.troy.test": "p1/b1"})


def test_other_errors_are_not_retried(store, data_api):
    data_api.add_response("describe_key_value_store", describe_answer(store, "E1"))
    data_api.add_client_error("update_keys", service_error_code="ValidationException", http_status_code=400)

    with pytest.raises(aws_clients.client("cloudfront-keyvaluestore").exceptions.ValidationException):
        edge_store.keys_update(puts={"a.sites.troy.test": "p1/b1"})


def test_updates_are_split_into_batches_of_at_most_fifty_keys(store, data_api):
    puts = {f"site{n:03}.sites.troy.test": f"p{n}/b1" for n in range(120)}
    ordered = [{"Key": key, "Value": puts[key]} for key in sorted(puts)]
    data_api.add_response("describe_key_value_store", describe_answer(store, "E1"))
    # Each batch writes with the ETag the previous one answered: no extra describe in between.
    for number, (start, end) in enumerate([(0, 50), (50, 100), (100, 120)]):
        data_api.add_response(
            "update_keys",
            update_answer(f"E{number + 2}"),
            {"KvsARN": store, "IfMatch": f"E{number + 1}", "Puts": ordered[start:end]},
        )

    assert edge_store.keys_update(puts=puts) == 3


def test_batches_stay_under_three_megabytes(store):
    values = {f"k{n:04}": "x" * 1000 for n in range(49)}
    # 49 keys of ~1 KB fit in one call; the byte bound only bites for far larger sets, so check
    # the splitter directly with a smaller bound to see it cut by size.
    assert len(list(edge_store._batches(values, []))) == 1
    original = edge_store.MAX_BYTES_PER_UPDATE
    try:
        edge_store.MAX_BYTES_PER_UPDATE = 10 * 1005
        batches = list(edge_store._batches(values, []))
    finally:
        edge_store.MAX_BYTES_PER_UPDATE = original
    assert [len(puts) for puts, _ in batches] == [10, 10, 10, 10, 9]


def test_values_the_store_would_refuse_are_refused_before_any_call(store, data_api):
    with pytest.raises(ValueError, match="value"):
        edge_store.keys_update(puts={"a.sites.troy.test": ""})
    with pytest.raises(ValueError, match="value"):
        edge_store.keys_update(puts={"a.sites.troy.test": "x" * 1025})
    with pytest.raises(ValueError, match="key"):
        edge_store.keys_update(puts={"a" * 513: "p1/b1"})


def test_nothing_to_write_makes_no_call(store, data_api):
    assert edge_store.keys_update(puts={}) == 0
    assert edge_store.keys_delete([]) == []


def test_delete_removes_only_the_keys_the_store_holds(store, data_api):
    data_api.add_response(
        "get_key",
        {"Key": "a.sites.troy.test", "Value": "p1/b1", "ItemCount": 2, "TotalSizeInBytes": 40},
        {"KvsARN": store, "Key": "a.sites.troy.test"},
    )
    data_api.add_client_error(
        "get_key",
        service_error_code="ResourceNotFoundException",
        http_status_code=404,
        expected_params={"KvsARN": store, "Key": "b.sites.troy.test"},
    )
    data_api.add_response("describe_key_value_store", describe_answer(store, "E1"))
    data_api.add_response(
        "update_keys",
        update_answer("E2"),
        {"KvsARN": store, "IfMatch": "E1", "Deletes": [{"Key": "a.sites.troy.test"}]},
    )

    assert edge_store.keys_delete(["b.sites.troy.test", "a.sites.troy.test"]) == ["a.sites.troy.test"]


def test_deleting_keys_already_gone_writes_nothing(store, data_api):
    data_api.add_client_error("get_key", service_error_code="ResourceNotFoundException", http_status_code=404)

    assert edge_store.keys_delete(["gone.sites.troy.test"]) == []
