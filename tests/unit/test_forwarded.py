"""livemetrics/forwarded.py: one reading of X-Forwarded-For for the gateway and the API."""

from hypothesis import given
from hypothesis import strategies as st

from api.ws_limits import client_key
from livemetrics.forwarded import forwarded_client
from producers.gateway.enrich import client_ip

TRUSTED = ["10.0.0.0/8"]
hops = st.one_of(
    st.ip_addresses(v=4).map(str),
    st.sampled_from(["10.0.0.3", "203.0.113.9:443", "unknown", "<script>", "", " ", "1.2.3.4x"]),
    st.text(max_size=20),
)


@given(st.lists(hops, max_size=5))
def test_the_gateway_and_the_api_take_the_same_ipv4_client(chain):
    header = ", ".join(chain)
    expected = forwarded_client("10.0.0.2", header, TRUSTED)
    assert client_ip("10.0.0.2", header, TRUSTED) == expected.ip
    assert client_key("10.0.0.2", header, TRUSTED) == expected.ip
    assert expected.ip == "10.0.0.2" or expected.address is not None  # never a made-up string


def test_a_hop_that_is_no_address_leaves_the_peer_and_is_named():
    c = forwarded_client("10.0.0.2", "203.0.113.1, <script>, 10.0.0.3", TRUSTED)
    assert (c.ip, c.refused_hop) == ("10.0.0.2", "<script>")
    assert forwarded_client("10.0.0.2", "[2001:db8::1]:443", TRUSTED).ip == "2001:db8::1"
    assert forwarded_client("198.51.100.7", "203.0.113.1", TRUSTED).ip == "198.51.100.7"  # peer not trusted


def test_a_64_kib_header_of_trusted_hops_is_read_only_its_last_hops(monkeypatch):
    import livemetrics.forwarded as fw

    parsed = []
    real = fw.hop_address
    monkeypatch.setattr(fw, "hop_address", lambda hop: parsed.append(hop) or real(hop))
    header = "203.0.113.1," + ",".join(["10.0.0.1"] * 7000)  # ~64 KiB, the head's limit
    c = fw.forwarded_client("10.0.0.2", header, TRUSTED)
    # more trusted hops than any real chain of proxies: the peer is the client, as when all are trusted;
    # before, all 7,000 were parsed (~30-100 ms of the event loop) and the left-most hop was the client
    assert (c.ip, c.refused_hop) == ("10.0.0.2", None)
    assert len(parsed) <= fw.MAX_HOPS + 1  # the peer's and MAX_HOPS hops
    chain = "203.0.113.1," + ",".join(["10.0.0.1"] * (fw.MAX_HOPS - 1))  # a long but possible chain
    assert fw.forwarded_client("10.0.0.2", chain, TRUSTED).ip == "203.0.113.1"
