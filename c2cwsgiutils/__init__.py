"""Operations toolkit for Pyramid WSGI services."""
