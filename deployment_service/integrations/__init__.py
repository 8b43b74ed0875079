"""Small functions over the outside services Troy talks to (AWS through the one client factory in
``deployment_service.aws``, and GitHub), returning plain data."""
