"""Image resolution as dockerd does it: a reference first, then an image-ID prefix.

References: moby v20.10.24 daemon/images/image.go (GetImage, ErrImageDoesNotExist),
reference/store.go (Get, Delete, References), image/store.go (Search),
docker/distribution digestset/set.go (Lookup).
"""
from __future__ import annotations

from bisect import bisect_left
from typing import Callable, TypeVar

from ..errors import NoSuchImage, NotFound
from ..ids import SHA256_PREFIX, ImageID
from ..model import Image, Reference, Store
from ..reference import (ERR_DIGEST_INVALID_FORMAT, DigestReference, Named, digest_error,
                         favor_digest, parse_any_reference, tag_name_only)

T = TypeVar("T")


class ReferenceDoesNotExist(NotFound):
    """reference/store.go ErrDoesNotExist."""

    def __init__(self) -> None:
        super().__init__("reference does not exist")


def store_cached(store: Store, key: str, build: Callable[[Store], T]) -> T:
    """A value derived from ``store``, built once: the Store is immutable, so
    derived indexes live beside its own cached properties."""
    cache = store.__dict__
    if key not in cache:
        cache[key] = build(store)    # the instance dict, as functools.cached_property does
    return cache[key]


def lookup(store: Store) -> ImageLookup:
    """The store's resolution tables, built once per store."""
    return store_cached(store, "_image_lookup", ImageLookup.build)


def get_image(store: Store, name: str) -> Image:
    """GetImage: the image ``docker image rm|inspect NAME`` means.

    Raises:
        InvalidReference: NAME does not parse (HTTP 400, Go's text).
        NoSuchImage: ``No such image: busybox:latest`` (also for an ambiguous prefix).
    """
    return lookup(store).get_image(name)


def normalized_name(ref: Reference) -> str:
    """A store reference's repository in normalized form (Go's ``Name()``).

    The normalized and familiar strings share the ``:tag``/``@digest`` suffix.
    """
    return ref.normalized[:len(ref.normalized) - len(ref.familiar) + len(ref.name)]


class ImageLookup:
    """The image store and reference store as GetImage sees them.

    ``copy()`` gives a working copy the rmi planner changes; later lookups on it see
    the references and images removed so far.
    """
    __slots__ = ("images", "_by_familiar", "_by_image", "_hex_ids")

    def __init__(self, images: dict[ImageID, Image], by_familiar: dict[str, Reference],
                 by_image: dict[ImageID, tuple[Reference, ...]], hex_ids: list[str]):
        self.images = images
        self._by_familiar = by_familiar      # repositories.json keys (familiar strings)
        self._by_image = by_image            # referencesByIDCache, sorted as References()
        self._hex_ids = hex_ids              # the digest set, sorted for prefix search

    @classmethod
    def build(cls, store: Store) -> ImageLookup:
        return cls(dict(store.images), {r.familiar: r for r in store.references},
                   dict(store.refs_by_image),
                   sorted(i[len(SHA256_PREFIX):] for i in store.images))

    def copy(self) -> ImageLookup:
        return ImageLookup(dict(self.images), dict(self._by_familiar), dict(self._by_image),
                           list(self._hex_ids))

    # -- reference store ---------------------------------------------------------
    def references(self, image_id: ImageID) -> tuple[Reference, ...]:
        """References(id): sorted by normalized string (also for images not stored)."""
        return self._by_image.get(image_id, ())

    def get_reference(self, ref: Named) -> ImageID | None:
        # store.Get: a tag+digest reference is looked up by its digest alone.
        key = favor_digest(ref) if ref.digest else tag_name_only(ref)
        found = self._by_familiar.get(key.familiar)
        return None if found is None else found.image_id

    def delete_reference(self, ref: Named | Reference) -> Reference:
        """store.Delete of ``favorDigest(TagNameOnly(ref))``; a stored Reference is
        its own key (it has exactly one of tag and digest).

        Raises:
            ReferenceDoesNotExist: no such entry.
        """
        key = favor_digest(tag_name_only(ref)).familiar if isinstance(ref, Named) else ref.familiar
        found = self._by_familiar.pop(key, None)
        if found is None:
            raise ReferenceDoesNotExist()
        rest = tuple(r for r in self._by_image[found.image_id] if r is not found)
        if rest:
            self._by_image[found.image_id] = rest
        else:
            del self._by_image[found.image_id]
        return found

    # -- image store -------------------------------------------------------------
    def delete_image(self, image_id: ImageID) -> Image:
        """Drop an image and its digest-set entry (image/store.go Delete)."""
        image = self.images.pop(image_id)
        hex_id = image_id[len(SHA256_PREFIX):]
        i = bisect_left(self._hex_ids, hex_id)
        assert self._hex_ids[i] == hex_id
        del self._hex_ids[i]
        return image

    def search(self, term: str) -> ImageID | None:
        """image/store.go Search → digestset Lookup: the one image ID ``term`` is a
        prefix of, hex alone or ``alg:hex``; any length; None when none or several."""
        algorithm, hex_prefix = "", term
        # Lookup parses the term as a digest: anything but a format error splits it.
        if digest_error(term) != ERR_DIGEST_INVALID_FORMAT:
            algorithm, _, hex_prefix = term.partition(":")
        if algorithm and algorithm != "sha256":
            return None                      # every image ID is sha256
        ids = self._hex_ids
        i = bisect_left(ids, hex_prefix)
        if i == len(ids) or not ids[i].startswith(hex_prefix):
            return None
        if i + 1 < len(ids) and ids[i + 1].startswith(hex_prefix):
            return None                      # ErrDigestAmbiguous, which GetImage hides
        return ImageID(SHA256_PREFIX + ids[i])

    def get_image(self, name: str) -> Image:
        """GetImage(name); see :func:`get_image`."""
        return self.resolve(name)[0]

    def resolve(self, name: str) -> tuple[Image, Named | DigestReference]:
        """GetImage(name), with ``name`` parsed (ParseAnyReference)."""
        ref = parse_any_reference(name)
        if isinstance(ref, DigestReference):
            image = self.images.get(ImageID(ref.digest))     # exact ID, no prefix search
            if image is None:
                raise NoSuchImage(f"No such image: {ref.familiar}")
            return image, ref
        image_id = self.get_reference(ref)
        if image_id is not None and image_id in self.images:
            return self.images[image_id], ref
        # A tag always wins; then the raw input is tried as an ID prefix.
        image_id = self.search(name)
        if image_id is not None:
            return self.images[image_id], ref
        raise NoSuchImage(f"No such image: {tag_name_only(ref).familiar}")
