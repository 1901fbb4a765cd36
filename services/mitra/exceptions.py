from bersinar.errors import NotFound


class PartnerNotFound(NotFound):
    title = "Mitra tidak ditemukan"


class AgreementNotFound(NotFound):
    title = "PKS tidak ditemukan"
