"""The service catalog (`/api/services`).

Named `catalog` because "service" already means the service layer in this code base.
"""
