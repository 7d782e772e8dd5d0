import math

import pytest
import torch

from aigc_course import data


def test_ring_has_eight_distinct_modes_at_the_right_angles():
    centers = data.ring_centers()
    assert centers.shape == (8, 2)
    assert torch.cdist(centers, centers).add(torch.eye(8) * 10).min() > 1.5
    for k, (x, y) in enumerate(centers.tolist()):
        assert math.isclose(x, 2 * math.cos(2 * math.pi * k / 8), abs_tol=1e-6)
        assert math.isclose(y, 2 * math.sin(2 * math.pi * k / 8), abs_tol=1e-6)


def test_grid_centres():
    centers = data.grid_centers()
    assert centers.shape == (25, 2)
    assert sorted(set(centers[:, 0].tolist())) == [-4.0, -2.0, 0.0, 2.0, 4.0]
    assert len({tuple(c) for c in centers.tolist()}) == 25


@pytest.mark.parametrize("sampler,centers,std", [(data.ring_gaussians, data.ring_centers(), 0.02),
                                                 (data.grid_gaussians, data.grid_centers(), 0.05)])
def test_mixture_statistics(sampler, centers, std):
    gen = torch.Generator().manual_seed(0)
    points, modes = sampler(20000, generator=gen, return_modes=True)
    assert points.shape == (20000, 2)
    offsets = points - centers[modes]
    assert abs(offsets.std().item() - std) < 0.05 * std
    counts = torch.bincount(modes, minlength=len(centers)).float()
    assert counts.min() > 0.8 * counts.mean()


@pytest.mark.parametrize("n", [0, -3, 2.5])
def test_mixture_n_must_be_positive(n):
    with pytest.raises(ValueError, match="n must be a positive int"):
        data.ring_gaussians(n)


def test_digits_split_is_fixed_and_scaled():
    split = data.load_digits()
    assert split.x_train.shape == (1437, 1, 8, 8) and split.x_test.shape == (360, 1, 8, 8)
    assert split.x_train.min() >= 0 and split.x_train.max() == 1.0
    assert torch.equal(split.x_test, data.load_digits().x_test)
    assert set(split.y_test.tolist()) == set(range(10))


def test_normalize_text_maps_to_the_alphabet():
    out = data.normalize_text("a\tb\r\nc中d")
    assert out == "a    b\nc?d"
    assert set(out) <= set(data.CORPUS_ALPHABET)
    assert data.decode_chars(data.encode_chars(out)) == out


def test_encode_rejects_outside_alphabet():
    with pytest.raises(ValueError, match="outside the corpus alphabet"):
        data.encode_chars("中")


def test_python_corpus_split_by_file_without_overlap():
    corpus = data.python_corpus(max_chars=200_000)
    assert len(corpus.train) == 200_000
    files = {split: set(corpus.files[split]) for split in ("train", "valid", "test")}
    assert not files["train"] & files["test"] and not files["train"] & files["valid"]
    assert not any(f.startswith(("test/", "encodings/")) for f in files["train"])
    assert corpus.test and set(corpus.test) <= set(data.CORPUS_ALPHABET)


def test_corpus_from_a_single_text_file(tmp_path):
    path = tmp_path / "story.txt"
    path.write_text("once upon a time " * 100)
    corpus = data.python_corpus(root=path)
    assert corpus.train and corpus.valid and corpus.test


def test_empty_corpus_file_names_the_path(tmp_path):
    path = tmp_path / "empty.txt"
    path.write_text("   \n")
    with pytest.raises(ValueError, match=rf"corpus file {path} is empty"):
        data.python_corpus(root=path)


def test_unreadable_corpus_file_names_the_path(tmp_path):
    path = tmp_path / "binary.txt"
    path.write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(ValueError, match=rf"corpus file {path} is not UTF-8"):
        data.read_text_file(path)
    with pytest.raises(ValueError, match="cannot be read"):
        data.read_text_file(tmp_path / "missing.txt")


def test_missing_corpus_root():
    with pytest.raises(ValueError, match="does not exist"):
        data.python_corpus(root="/no/such/folder")


def test_ring_log_density_is_the_mixture_density():
    from aigc_course.data import ring_centers, ring_log_density

    centers = ring_centers()
    # at a centre the other components are ~50 std away: log(1/8 * 1/(2 pi std^2))
    expected = math.log(1 / 8) - math.log(2 * math.pi * 0.02**2)
    assert torch.allclose(ring_log_density(centers), torch.full((8,), expected), atol=1e-4)
    # it integrates to 1 over a fine grid around one mode (times 8 modes)
    g = torch.linspace(-0.2, 0.2, 401)
    xx, yy = torch.meshgrid(g + float(centers[0, 0]), g + float(centers[0, 1]), indexing="ij")
    pts = torch.stack([xx.reshape(-1), yy.reshape(-1)], 1)
    mass = ring_log_density(pts).double().exp().sum() * float(g[1] - g[0]) ** 2
    assert float(mass) * 8 == pytest.approx(1.0, abs=1e-3)
    with pytest.raises(ValueError, match=r"x must be a float tensor of shape \(n, 2\)"):
        ring_log_density(torch.zeros(3))
