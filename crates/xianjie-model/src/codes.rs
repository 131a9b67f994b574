//! The closed code lists of the case record (action, party kind, ID type, penalty kinds, inspection
//! results, licence categories, transfer status, case status, disclosure), each with its canonical
//! code (used in JSON and adapter code tables) and its Chinese label.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An unknown code: names the list and the allowed codes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{found}' is not a known {list} (allowed: {allowed})")]
pub struct CodeError {
    /// The list's name.
    pub list: &'static str,
    /// The value found.
    pub found: String,
    /// The allowed codes, comma-separated.
    pub allowed: String,
}

macro_rules! code_enum {
    ($(#[$m:meta])* $name:ident, $list:literal, { $($(#[$vm:meta])* $v:ident = $code:literal, $label:literal;)+ }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $($(#[$vm])* $v,)+
        }

        impl $name {
            /// Every value, in code-list order.
            pub const ALL: &'static [$name] = &[$($name::$v,)+];

            /// The canonical code.
            pub fn code(self) -> &'static str {
                match self { $($name::$v => $code,)+ }
            }

            /// The Chinese label.
            pub fn label(self) -> &'static str {
                match self { $($name::$v => $label,)+ }
            }

            /// Parses a canonical code.
            pub fn parse(s: &str) -> Result<Self, CodeError> {
                match s {
                    $($code => Ok($name::$v),)+
                    _ => Err(CodeError {
                        list: $list,
                        found: s.to_string(),
                        allowed: [$($code),+].join(", "),
                    }),
                }
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.code())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                $name::parse(&s).map_err(serde::de::Error::custom)
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.code())
            }
        }
    };
}

code_enum!(
    /// The kind of enforcement action.
    Action, "action", {
        /// 行政处罚
        Penalty = "penalty", "行政处罚";
        /// 行政许可
        Licensing = "licensing", "行政许可";
        /// 行政强制
        Compulsion = "compulsion", "行政强制";
        /// 行政征收
        Levy = "levy", "行政征收";
        /// 行政检查
        Inspection = "inspection", "行政检查";
        /// 其他
        Other = "other", "其他";
    }
);

code_enum!(
    /// Who the administrative counterpart (行政相对人) is.
    PartyKind, "party kind", {
        /// 自然人
        NaturalPerson = "natural_person", "自然人";
        /// 法人及非法人组织
        LegalPerson = "legal_person", "法人";
        /// 个体工商户
        IndividualBusiness = "individual_business", "个体工商户";
        /// 其他组织
        OtherOrg = "other_org", "其他组织";
    }
);

code_enum!(
    /// The kind of identity document of a party.
    IdType, "ID type", {
        /// 居民身份证
        ResidentId = "resident_id", "身份证";
        /// 统一社会信用代码
        Uscc = "uscc", "统一社会信用代码";
        /// 护照
        Passport = "passport", "护照";
        /// 港澳居民来往内地通行证
        HkMacaoPermit = "hk_macao_permit", "港澳居民来往内地通行证";
        /// 台湾居民来往大陆通行证
        TaiwanPermit = "taiwan_permit", "台湾居民来往大陆通行证";
        /// 外国人永久居留身份证
        ForeignPermanentResident = "foreign_permanent_resident", "外国人永久居留身份证";
        /// 其他
        Other = "other", "其他";
    }
);

code_enum!(
    /// Kinds of administrative penalty (Administrative Penalty Law 2021, art. 9).
    PenaltyKind, "penalty kind", {
        /// 警告
        Warning = "warning", "警告";
        /// 通报批评
        CirculatedCriticism = "circulated_criticism", "通报批评";
        /// 罚款
        Fine = "fine", "罚款";
        /// 没收违法所得
        ConfiscateIllegalGains = "confiscate_illegal_gains", "没收违法所得";
        /// 没收非法财物
        ConfiscateIllegalProperty = "confiscate_illegal_property", "没收非法财物";
        /// 暂扣许可证件
        SuspendLicense = "suspend_license", "暂扣许可证件";
        /// 降低资质等级
        LowerQualification = "lower_qualification", "降低资质等级";
        /// 吊销许可证件
        RevokeLicense = "revoke_license", "吊销许可证件";
        /// 限制开展生产经营活动
        RestrictBusiness = "restrict_business", "限制开展生产经营活动";
        /// 责令停产停业
        OrderSuspension = "order_suspension", "责令停产停业";
        /// 责令关闭
        OrderClosure = "order_closure", "责令关闭";
        /// 限制从业
        RestrictEmployment = "restrict_employment", "限制从业";
        /// 行政拘留
        AdministrativeDetention = "administrative_detention", "行政拘留";
        /// 其他
        Other = "other", "其他";
    }
);

code_enum!(
    /// Results of a double-random inspection (双随机一公开 检查结果).
    InspectionResult, "inspection result code", {
        /// 未发现问题
        NoProblem = "01", "未发现问题";
        /// 发现问题经责令已改正
        Corrected = "02", "发现问题经责令已改正";
        /// 未发现本次抽查涉及的生产经营活动
        NoActivity = "03", "未发现本次抽查涉及的生产经营活动";
        /// 不配合检查情节严重
        Uncooperative = "04", "不配合检查情节严重";
        /// 已关闭停业或正在组织清算
        ClosedOrLiquidating = "05", "已关闭停业或正在组织清算";
        /// 已注销
        Deregistered = "06", "已注销";
        /// 已被吊销营业执照
        LicenseRevoked = "07", "已被吊销营业执照";
        /// 发现问题已移送有关部门处理
        Referred = "08", "发现问题已移送有关部门处理";
        /// 发现问题待后续处理
        PendingFollowUp = "09", "发现问题待后续处理";
        /// 通过登记的住所（经营场所）无法联系
        Unreachable = "10", "通过登记的住所（经营场所）无法联系";
        /// 发现问题已依法立案查处
        CaseOpened = "11", "发现问题已依法立案查处";
        /// 发现问题已责令限期改正
        OrderedToCorrect = "12", "发现问题已责令限期改正";
        /// 未按规定公示应当公示的信息
        NotDisclosed = "13", "未按规定公示应当公示的信息";
        /// 公示信息隐瞒真实情况弄虚作假
        FalseDisclosure = "14", "公示信息隐瞒真实情况弄虚作假";
    }
);

code_enum!(
    /// Licence categories (Administrative Licensing Law art. 12).
    LicenseCategory, "licence category", {
        /// 普通
        General = "general", "普通";
        /// 特许
        Franchise = "franchise", "特许";
        /// 认可
        Recognition = "recognition", "认可";
        /// 核准
        Approval = "approval", "核准";
        /// 登记
        Registration = "registration", "登记";
        /// 其他
        Other = "other", "其他";
    }
);

code_enum!(
    /// A licence's current state (当前状态, 双公示 `XK_ZT`): 1 有效, 2 无效 (revoked, withdrawn or
    /// expired).
    LicenseState, "licence state", {
        /// 有效
        Valid = "valid", "有效";
        /// 无效
        Invalid = "invalid", "无效";
    }
);

code_enum!(
    /// Where a suspected-crime transfer to the public-security organs stands (涉嫌犯罪移送).
    TransferStatus, "transfer status", {
        /// 未移送
        None = "none", "未移送";
        /// 已移送
        Transferred = "transferred", "已移送";
        /// 已受理
        Accepted = "accepted", "已受理";
        /// 已立案
        Filed = "filed", "已立案";
        /// 不予立案
        NotFiled = "not_filed", "不予立案";
        /// 已退回
        Returned = "returned", "已退回";
        /// 建议移送 (recommended by the procuratorate)
        Recommended = "recommended", "建议移送";
    }
);

code_enum!(
    /// The public-security organ's decision on a transferred case (310号令 art. 8).
    PoliceDecision, "police decision", {
        /// 立案
        Filed = "filed", "立案";
        /// 不予立案
        NotFiled = "not_filed", "不予立案";
    }
);

code_enum!(
    /// Whether a decision stands.
    CaseStatus, "case status", {
        /// 正常
        Active = "active", "正常";
        /// 撤销
        Revoked = "revoked", "已撤销";
        /// 更正
        Corrected = "corrected", "已更正";
    }
);

code_enum!(
    /// Whether a case may appear in public disclosures.
    Disclosure, "disclosure", {
        /// 公开
        Public = "public", "公开";
        /// 不公开 (minors, state or trade secrets, privacy)
        Restricted = "restricted", "不公开";
    }
);

impl TransferStatus {
    /// Whether the status means the case has actually been handed to the receiving organ.
    pub fn handed_over(self) -> bool {
        matches!(
            self,
            Self::Transferred | Self::Accepted | Self::Filed | Self::NotFiled | Self::Returned
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_unknown_names_allowed() {
        for a in Action::ALL {
            assert_eq!(Action::parse(a.code()).unwrap(), *a);
        }
        let e = Action::parse("reward").unwrap_err();
        assert_eq!(
            e.to_string(),
            "'reward' is not a known action (allowed: penalty, licensing, compulsion, levy, inspection, other)"
        );
        assert_eq!(InspectionResult::ALL.len(), 14);
        assert_eq!(
            InspectionResult::parse("13").unwrap().label(),
            "未按规定公示应当公示的信息"
        );
        assert_eq!(
            serde_json::to_string(&PenaltyKind::Fine).unwrap(),
            "\"fine\""
        );
    }
}
