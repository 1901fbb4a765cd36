from bersinar.errors import NotEligible, NotFound


class ReferralNotFound(NotFound):
    title = "Rujukan tidak ditemukan"


class UnknownPartner(NotEligible):
    title = "Mitra tidak dikenal"
