import pytest


@pytest.fixture(autouse=True)
def spool(settings, tmp_path):
    """Each test gets its own upload spool and upload temp dir (to see that nothing is left)."""
    settings.TROY_UPLOAD_SPOOL_DIR = tmp_path / "spool"
    settings.FILE_UPLOAD_TEMP_DIR = str(tmp_path / "tmp")
    (tmp_path / "tmp").mkdir()
    return settings.TROY_UPLOAD_SPOOL_DIR
